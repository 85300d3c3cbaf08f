// The accuracy report: its written shape and verdict rule (report.ts) and its one lenient reader (read.ts).

export { looksLikeReport, normalizeReport, parseWeightName, type ReportModel, type ReportWeight } from './read';
export {
  type AccuracyReport,
  DEFAULT_TOLERANCES,
  E2E_THRESHOLDS,
  type EndToEndFailure,
  type EndToEndReport,
  type EndToEndThresholds,
  isEndToEndFailure,
  judge,
  judgeEndToEnd,
  type LayerReport,
  type Tolerances,
  verdictBasis,
  type WeightReport,
} from './report';
