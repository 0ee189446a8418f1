import { Inject, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import type Redis from 'ioredis';
import { DomainError, ErrorCode, PullLayerRecordSchema, RedisKey, type LogLine } from '@berth/contracts';
import { ServiceRepository } from '@berth/db';
import type { ProjectContext } from '../auth/principal';
import { REDIS } from '../tokens';
import { ServicesService } from './services.service';


/** A replica's image pull as `GET …/replicas` shows it (bytes over the layers recorded so far). */
export interface PullProgressOut {
  done: number;
  total: number;
  layers: number;
  /** Bytes of those layers that were on the node already (nothing downloaded for them). */
  cached: number;
}

type StreamEntry = [id: string, fields: string[]];

function toLine(replicaId: string, [id, fields]: StreamEntry): LogLine {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { replicaId, id, ts: f.ts ?? '', stream: f.stream === 'stderr' ? 'stderr' : 'stdout', line: f.line ?? '' };
}

const byTime = (a: LogLine, b: LogLine) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

const MAX_REPLICAS = 20;
const BLOCK_MS = 5000;
const MAX_FOLLOW_MS = 60 * 60 * 1000;

/**
 * Logs contract: agents XADD each line to `RedisKey.logs(replicaId)` with fields ts (ISO time),
 * stream (stdout|stderr) and line. This reads the streams of the service's newest replicas:
 * XREVRANGE for the tail, then XREAD BLOCK for follow, and writes SSE `data: {json}` events.
 */
@Injectable()
export class LogsService {
  constructor(
    private readonly services: ServicesService,
    private readonly repo: ServiceRepository,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  /**
   * Image pull progress of replicas (RedisKey.pull, written by agents): bytes done and total over
   * the layers reported so far. Replicas with nothing recorded (cached image, or over an hour ago)
   * are absent from the map.
   */
  async pullProgress(replicaIds: string[]): Promise<Map<string, PullProgressOut>> {
    const out = new Map<string, PullProgressOut>();
    if (replicaIds.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const id of replicaIds) pipe.hgetall(RedisKey.pull(id));
    const results = (await pipe.exec()) ?? [];
    results.forEach(([err, h], i) => {
      if (err || !h || typeof h !== 'object') return;
      let done = 0;
      let total = 0;
      let layers = 0;
      let cached = 0;
      for (const v of Object.values(h as Record<string, string>)) {
        try {
          const parsed = PullLayerRecordSchema.safeParse(JSON.parse(v));
          if (!parsed.success) continue;
          const l = parsed.data;
          done += l.done;
          total += l.total;
          if (l.cached === true) cached += l.total;
          layers++;
        } catch {
          // a malformed entry is skipped
        }
      }
      if (layers > 0) out.set(replicaIds[i]!, { done, total, layers, cached });
    });
    return out;
  }

  /** `since`: epoch ms; stream ids are `<ms>-<seq>`, so it is a range bound as it is. */
  async stream(project: ProjectContext, name: string, opts: { follow: boolean; tail: number; replica?: string; since?: number }, req: Request, res: Response) {
    const s = await this.services.mustFind(project, name);
    const replicaIds = async () => {
      const ids = (await this.repo.recentReplicas(s.id, MAX_REPLICAS)).map((r) => r.id);
      return opts.replica ? ids.filter((id) => id === opts.replica) : ids;
    };
    const initial = await replicaIds();
    if (opts.replica && initial.length === 0) throw new DomainError(ErrorCode.NotFound, `replica '${opts.replica}' of service '${name}' not found`);

    res.status(200);
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache, no-transform');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    const send = (l: LogLine) => res.write(`id: ${l.replicaId}/${l.id}\ndata: ${JSON.stringify(l)}\n\n`);

    const lastIds = new Map<string, string>();
    const tailLines: LogLine[] = [];
    for (const id of initial) {
      const from = opts.since !== undefined ? `${Math.max(0, Math.floor(opts.since))}-0` : '-';
      const entries = (await this.redis.xrevrange(RedisKey.logs(id), '+', from, 'COUNT', Math.max(opts.tail, 1))) as StreamEntry[];
      // Following resumes after the newest line sent, or after `since` (older lines are not wanted).
      lastIds.set(id, entries[0]?.[0] ?? (opts.since !== undefined ? from : '0-0'));
      if (opts.tail > 0) tailLines.push(...entries.map((e) => toLine(id, e)));
    }
    tailLines.sort(byTime);
    for (const l of tailLines.slice(-opts.tail || tailLines.length)) if (opts.tail > 0) send(l);
    if (!opts.follow) {
      res.end();
      return;
    }

    const conn = this.redis.duplicate();
    let closed = false;
    const close = () => {
      closed = true;
      conn.disconnect();
    };
    req.once('close', close);
    res.once('close', close);
    const deadline = Date.now() + MAX_FOLLOW_MS;
    try {
      while (!closed && Date.now() < deadline) {
        for (const id of await replicaIds()) if (!lastIds.has(id)) lastIds.set(id, '0-0');
        const keys = [...lastIds.keys()];
        if (keys.length === 0) {
          res.write(': waiting for replicas\n\n');
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        const reply = (await conn.xread('COUNT', 1000, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys.map((k) => RedisKey.logs(k)), ...keys.map((k) => lastIds.get(k)!))) as
          | [key: string, entries: StreamEntry[]][]
          | null;
        if (!reply) {
          res.write(': keepalive\n\n');
          continue;
        }
        const lines: LogLine[] = [];
        for (const [key, entries] of reply) {
          const replicaId = key.slice(RedisKey.logs('').length);
          for (const e of entries) lines.push(toLine(replicaId, e));
          if (entries.length) lastIds.set(replicaId, entries[entries.length - 1]![0]);
        }
        lines.sort(byTime).forEach(send);
      }
    } catch (e) {
      if (!closed) res.write(`event: error\ndata: ${JSON.stringify({ message: (e as Error).message })}\n\n`);
    } finally {
      conn.disconnect();
      res.end();
    }
  }
}
