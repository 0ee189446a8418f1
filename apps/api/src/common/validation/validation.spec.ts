import 'reflect-metadata';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, ValidateNested } from 'class-validator';
import { DomainError } from '@berth/contracts';
import { nullProblems, validationPipe } from './validation';

class Inner {
  @IsOptional()
  @IsInt()
  n?: number;
}

class Outer {
  @IsOptional()
  @IsInt()
  port?: number;

  @ApiPropertyOptional({ nullable: true })
  @IsOptional()
  @IsString({ each: true })
  command?: string[] | null;

  @IsOptional()
  @ValidateNested()
  @Type(() => Inner)
  inner?: Inner;

  @IsOptional()
  @ValidateNested({ each: true })
  @Type(() => Inner)
  list?: Inner[];
}

const run = (body: unknown) => validationPipe().transform(body, { type: 'body', metatype: Outer });

describe('null for fields that do not take it', () => {
  it('a field behind @IsOptional is a 400 naming it, at any depth', async () => {
    await expect(run({ port: null })).rejects.toMatchObject({ message: 'port must not be null: omit it to leave it unset (or give a value)' });
    const e: DomainError = await run({ inner: { n: null }, list: [{}, { n: null }] }).catch((x) => x);
    expect(e).toBeInstanceOf(DomainError);
    expect((e.details as { fields: { field: string }[] }).fields.map((f) => f.field)).toEqual(['inner.n', 'list.1.n']);
  });

  it('a field declared nullable takes null; absent fields are fine', async () => {
    await expect(run({ command: null })).resolves.toMatchObject({ command: null });
    await expect(run({})).resolves.toBeInstanceOf(Outer);
  });

  it('plain objects and values without class-validator metadata are not judged', () => {
    expect(nullProblems({ a: null })).toEqual([]);
    expect(nullProblems(null)).toEqual([]);
  });
});
