/** DI token of the example server's validated environment (AppEnvironment). */
export const APP_ENVIRONMENT = 'APP:ENVIRONMENT';
