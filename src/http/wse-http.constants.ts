/** DI token of the metrics endpoint's API key (undefined when scrapes are open). */
export const WSE_METRICS_KEY = 'WSE:HTTP_METRICS_KEY';
