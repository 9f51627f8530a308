/** Where one endpoint of `WseHttpModule` is mounted. */
export interface WseHttpEndpointOptions {
  /**
   * The route, as a Nest controller path.
   * @default '/api' for the server API, '/metrics' for metrics, '/stats' for stats
   */
  path?: string;
}

/** Options of the Prometheus endpoint. */
export interface WseMetricsEndpointOptions extends WseHttpEndpointOptions {
  /**
   * When true, a scrape needs `Authorization: Bearer <apiKey>` (WseModule's `apiKey`, which must
   * then be set).
   * @default false
   */
  requireApiKey?: boolean;
}

/**
 * Which HTTP endpoints the application mounts, and where. Each is off unless given; `true`
 * mounts it at its default path. `WseModule` alone mounts no route at all.
 */
export interface WseHttpModuleOptions {
  /**
   * The server API of CONTRACT section 7 (publish, broadcast, connections, DLQ, snapshot),
   * behind `Authorization: Bearer <apiKey>`; WseModule's `apiKey` must be set, or the
   * application refuses to start.
   */
  api?: WseHttpEndpointOptions | true;
  /** Prometheus text exposition of WseMetricsService (GET). */
  metrics?: WseMetricsEndpointOptions | true;
  /**
   * Five public figures for a status page (GET): connections, local deliveries, Redis connected,
   * DLQ size, multi-instance mode. No ids, topics or error texts, so it can be public.
   */
  stats?: WseHttpEndpointOptions | true;
}
