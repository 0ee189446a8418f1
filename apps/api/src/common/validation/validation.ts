import { ValidationError, ValidationPipe } from '@nestjs/common';
import { registerDecorator, ValidationOptions } from 'class-validator';
import { DomainError, ErrorCode } from '@berth/contracts';

export interface FieldProblem {
  field: string;
  message: string;
}

/** Flattens class-validator's tree into `{field: 'resources.cpuMillis', message}` with full paths in messages. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const e of errors) {
    const field = parent ? `${parent}.${e.property}` : e.property;
    for (const msg of Object.values(e.constraints ?? {})) {
      const m = msg.startsWith(`property ${e.property} `)
        ? `${field} is not allowed`
        : msg.startsWith(e.property) ? field + msg.slice(e.property.length) : `${field}: ${msg}`;
      out.push({ field, message: m });
    }
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

export function validationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const problems = flattenValidationErrors(errors);
      return new DomainError(ErrorCode.Validation, problems.map((p) => p.message).join('; ') || 'invalid input', {
        fields: problems,
      });
    },
  });
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$/;

function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** An object of string values whose keys match `keyPattern` (env vars, node labels). */
export function IsStringMap(kind: 'env' | 'label', opts: { maxEntries?: number; maxValue?: number } & ValidationOptions = {}) {
  const keyRe = kind === 'env' ? ENV_NAME : LABEL_KEY;
  const maxEntries = opts.maxEntries ?? 256;
  const maxValue = opts.maxValue ?? 32 * 1024;
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isStringMap',
      target: target.constructor,
      propertyName,
      options: opts,
      validator: {
        validate(v: unknown) {
          if (!plainObject(v)) return false;
          const entries = Object.entries(v);
          if (entries.length > maxEntries) return false;
          return entries.every(([k, val]) => keyRe.test(k) && typeof val === 'string' && val.length <= maxValue);
        },
        defaultMessage() {
          return kind === 'env'
            ? `${propertyName} must be an object of at most ${maxEntries} variables: names like FOO_BAR ([A-Za-z_][A-Za-z0-9_]*) with string values`
            : `${propertyName} must be an object of at most ${maxEntries} labels: keys of letters, digits, ".", "_", "-", "/" with string values`;
        },
      },
    });
}
