import { ValidationError, ValidationPipe } from '@nestjs/common';
import { getMetadataStorage, registerDecorator, ValidationOptions, type ValidatorOptions } from 'class-validator';
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

/** Where @nestjs/swagger keeps `@ApiProperty(...)` options (`nullable: true` marks a field that takes null). */
const SWAGGER_PROPERTY = 'swagger/apiModelProperties';
const validatedProps = new WeakMap<Function, Set<string>>();

function validatedPropertiesOf(cls: Function): Set<string> {
  let props = validatedProps.get(cls);
  if (!props) {
    props = new Set(getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false).map((m) => m.propertyName));
    validatedProps.set(cls, props);
  }
  return props;
}

function isNullable(cls: Function, prop: string): boolean {
  const meta = Reflect.getMetadata(SWAGGER_PROPERTY, cls.prototype, prop) as { nullable?: boolean } | undefined;
  return meta?.nullable === true;
}

/**
 * Fields set to `null` that do not take null. class-validator's `@IsOptional()` lets null through
 * as if the field were absent, so `{"port": null}` used to reach the database (a 500). A field
 * takes null only when its DTO says so (`@ApiPropertyOptional({nullable: true})`, which also
 * documents it in OpenAPI). Walks the transformed DTO instance, nested DTOs and arrays of them;
 * only properties class-validator knows are judged, so inputs validated some other way (zod) are
 * left to their own schema.
 */
export function nullProblems(value: unknown, parent = ''): FieldProblem[] {
  if (typeof value !== 'object' || value === null) return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => nullProblems(v, parent ? `${parent}.${i}` : String(i)));
  const cls = (value as object).constructor;
  if (typeof cls !== 'function' || cls === Object) return [];
  const props = validatedPropertiesOf(cls);
  const out: FieldProblem[] = [];
  for (const [key, v] of Object.entries(value)) {
    const field = parent ? `${parent}.${key}` : key;
    if (v === null) {
      if (props.has(key) && !isNullable(cls, key)) {
        out.push({ field, message: `${field} must not be null: omit it to leave it unset (or give a value)` });
      }
    } else out.push(...nullProblems(v, field));
  }
  return out;
}

/** The global pipe: class-validator, plus null only where a field is declared nullable. */
class BerthValidationPipe extends ValidationPipe {
  protected override async validate(object: object, options?: ValidatorOptions): Promise<ValidationError[]> {
    const errors = await super.validate(object, options);
    const reported = new Set(flattenValidationErrors(errors).map((p) => p.field));
    const nulls = nullProblems(object).filter((p) => !reported.has(p.field));
    return [...errors, ...nulls.map((p): ValidationError => ({ property: p.field, constraints: { notNull: p.message }, children: [] }))];
  }
}

export function validationPipe(): ValidationPipe {
  return new BerthValidationPipe({
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
