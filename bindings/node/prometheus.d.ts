// Verification metrics for prom-client (docs/metrics.md).
import type { Keyring } from './index'

/** A metric as a prom-client registry reads it. */
export interface AuthMetricFamily {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'histogram'
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ value: number; labels: Record<string, string>; metricName?: string }> }>
  reset(): void
}

/** What `registerAuthMetrics` needs of a prom-client `Registry`. */
export interface MetricRegistry {
  registerMetric(metric: any): void
  getSingleMetric(name: string): unknown
}

/** `apikeys_authentications_total`: the counter's name. */
export declare const COUNTER: 'apikeys_authentications_total'
/** `apikeys_authentication_duration_seconds`: the latency histogram's name. */
export declare const HISTOGRAM: 'apikeys_authentication_duration_seconds'

/**
 * Register `keyring`'s verification metrics (it must be made with
 * `{ metrics: true }`) in a prom-client registry (default: prom-client's
 * global `register`).
 */
export declare function registerAuthMetrics(
  keyring: Keyring,
  registry?: MetricRegistry,
): { counter: AuthMetricFamily; histogram: AuthMetricFamily }
