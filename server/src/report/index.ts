// The accuracy report: its written shape and verdict rule (report.ts) and its one lenient reader (read.ts).

export { looksLikeReport, normalizeReport, parseWeightName, type ReportModel, type ReportWeight } from './read';
export {
  type AccuracyReport,
  DEFAULT_TOLERANCES,
  judge,
  type LayerReport,
  type Tolerances,
  type WeightReport,
} from './report';
