import { topicRejection } from '../../hub/topic-validation.js';
import { apiErrors, badRequest } from './api-errors.js';

/**
 * Hand-written readers for the API's small bodies: each names the offending field in a 400
 * (`{"error", "field"}`), which a generic validator would word differently per library.
 */
export class ApiBody {
  private readonly fields: Record<string, unknown>;

  constructor(body: unknown) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest(apiErrors.bodyNotObject());
    this.fields = body as Record<string, unknown>;
  }

  has(field: string): boolean {
    return Object.hasOwn(this.fields, field) && this.fields[field] !== undefined;
  }

  /** Any JSON value, but present. */
  data(field: string): unknown {
    if (!this.has(field)) throw badRequest(apiErrors.missing(field));
    return this.fields[field];
  }

  topic(field: string): string {
    const value = this.data(field);
    if (typeof value !== 'string') throw badRequest(apiErrors.wrongType(field, 'a string'));
    const rejection = topicRejection(value);
    if (rejection !== undefined) throw badRequest(apiErrors.invalidTopic(field, rejection));
    return value;
  }

  optionalBoolean(field: string): boolean | undefined {
    if (!this.has(field)) return undefined;
    const value = this.fields[field];
    if (typeof value !== 'boolean') throw badRequest(apiErrors.wrongType(field, 'a boolean'));
    return value;
  }

  /** An array of strings; each topic's own validity is the registry's to report. */
  topics(field: string): string[] {
    const value = this.data(field);
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      throw badRequest(apiErrors.wrongType(field, 'an array of strings'));
    }
    return value as string[];
  }

  optionalTopics(field: string): string[] | undefined {
    return this.has(field) ? this.topics(field) : undefined;
  }
}
