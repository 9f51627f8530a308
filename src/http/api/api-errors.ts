import { BadRequestException, NotFoundException } from '@nestjs/common';

/** Bodies of the API's error answers: `{"error": "...", "field"?: "..."}` (CONTRACT section 7). */
export const apiErrors = {
  unauthorized: () => ({ error: 'Missing or wrong API key: send Authorization: Bearer <WSE_API_KEY>' }),
  unknownConnection: (id: string) => ({ error: `No connection ${JSON.stringify(id)} on this instance` }),
  bodyNotObject: () => ({ error: 'Body must be a JSON object' }),
  missing: (field: string) => ({ error: `Field "${field}" is required`, field }),
  wrongType: (field: string, expected: string) => ({ error: `Field "${field}" must be ${expected}`, field }),
  invalidTopic: (field: string, reason: string) => ({ error: `Field "${field}": ${reason}`, field }),
  badData: (reason: string) => ({ error: `Field "data": ${reason}`, field: 'data' }),
};

export function badRequest(body: { error: string; field?: string }): BadRequestException {
  return new BadRequestException(body);
}

export function unknownConnection(id: string): NotFoundException {
  return new NotFoundException(apiErrors.unknownConnection(id));
}
