import { BadRequestException, NotFoundException } from '@nestjs/common';
import { DomainError, ErrorCode } from '@berth/contracts';
import { InvalidReferenceError, RegistryAddressRefusedError, RegistryNotFoundError, RegistryUnavailableError } from '@berth/oci';
import { toErrorResponse } from './error-response';

describe('toErrorResponse', () => {
  it('maps domain errors through httpStatusFor', () => {
    const r = toErrorResponse(new DomainError(ErrorCode.Conflict, 'dup', { field: 'name' }));
    expect(r).toEqual({ status: 409, body: { error: { code: 'CONFLICT', message: 'dup', details: { field: 'name' } } }, unexpected: false });
  });
  it('maps body-parser errors: malformed JSON 400, too large 413', () => {
    expect(toErrorResponse({ type: 'entity.parse.failed', message: 'Unexpected token' }).status).toBe(400);
    const big = toErrorResponse({ type: 'entity.too.large', limit: 1024 });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });
  it('maps registry errors: unknown 422, unreachable 503', () => {
    expect(toErrorResponse(new RegistryNotFoundError('manifest unknown', [{ code: 'MANIFEST_UNKNOWN' }])).status).toBe(422);
    expect(toErrorResponse(new RegistryUnavailableError('ECONNREFUSED')).status).toBe(503);
    const refused = toErrorResponse(new RegistryAddressRefusedError('registry address x (rule: metadata)', 'x', '169.254.169.254', 'metadata'));
    expect(refused.status).toBe(422);
    expect(refused.body.error).toEqual({
      code: 'REGISTRY_ADDRESS_REFUSED',
      message: 'registry address x (rule: metadata)',
      details: { rule: 'metadata', host: 'x', address: '169.254.169.254' },
    });
    const ref = toErrorResponse(new InvalidReferenceError('A/b', 'repository', 'bad repo'));
    expect(ref.status).toBe(400);
    expect(ref.body.error.details).toMatchObject({ part: 'repository' });
  });
  it('maps Nest HTTP exceptions, naming unknown routes', () => {
    expect(toErrorResponse(new BadRequestException('nope')).body.error).toEqual({ code: 'VALIDATION', message: 'nope' });
    expect(toErrorResponse(new NotFoundException('Cannot GET /x')).body.error.message).toBe('no such endpoint: GET /x');
  });
  it('anything else is a 500 flagged as a bug', () => {
    const r = toErrorResponse(new TypeError('x is undefined'));
    expect(r).toMatchObject({ status: 500, unexpected: true, body: { error: { code: 'INTERNAL' } } });
    const id = r.body.error.details?.errorId as string;
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(r.body.error.message).toContain(id);
    expect(toErrorResponse(new TypeError('again')).body.error.details?.errorId).not.toBe(id);
  });
});
