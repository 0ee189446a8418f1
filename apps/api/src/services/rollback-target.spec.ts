import { pickRevisionByTag } from './services.service';
import { neverActiveReason, pickPreviousRevision, reachedActive } from './rollback-target';

// Newest first, as the history is read.
const history = [
  { number: 5, imageRef: '127.0.0.1:5000/fixtures/crash:v1' },
  { number: 4, imageRef: '127.0.0.1:5000/fixtures/web:v2' },
  { number: 3, imageRef: 'docker.io/library/nginx:v1' },
  { number: 2, imageRef: '127.0.0.1:5000/fixtures/web:v1' },
  { number: 1, imageRef: '127.0.0.1:5000/fixtures/web:v1' },
];
const pick = (tag: string, active = '127.0.0.1:5000/fixtures/web:v2') => pickRevisionByTag(history, tag, active)?.number;

describe('rollback target by tag', () => {
  it('a bare tag prefers the repository the service runs now, newest first', () => {
    expect(pick('v1')).toBe(2);
    expect(pick('v2')).toBe(4);
  });
  it('a bare tag falls back to the newest revision of any repository', () => {
    expect(pick('v1', 'ghcr.io/acme/other:v9')).toBe(5);
  });
  it('a qualified tag names the repository (short, path suffix or full reference)', () => {
    expect(pick('crash:v1')).toBe(5);
    expect(pick('fixtures/web:v1')).toBe(2);
    expect(pick('127.0.0.1:5000/fixtures/web:v1')).toBe(2);
    expect(pick('nginx:v1')).toBe(3);
    expect(pick('library/nginx:v1')).toBe(3);
  });
  it('nothing matches: undefined (the API answers 404)', () => {
    expect(pick('v7')).toBeUndefined();
    expect(pick('web:v7')).toBeUndefined();
    expect(pick('eb:v1')).toBeUndefined(); // a suffix only on a path boundary
  });
});

describe('rollback target: the previous revision that worked', () => {
  // Newest first: 1 worked, 2 and 3 failed, 4 is active; 5 was superseded while rolling out.
  const t = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, n));
  const revs = [
    { number: 5, status: 'SUPERSEDED', statusReason: 'replaced by revision 6', activatedAt: null, image: 'b' },
    { number: 4, status: 'ACTIVE', statusReason: null, activatedAt: t(4), image: 'c' },
    { number: 3, status: 'FAILED', statusReason: '1/1 started replica(s) failed: executable "/nonexistent" not found', activatedAt: null, image: 'x' },
    { number: 2, status: 'FAILED', statusReason: '1/1 started replica(s) crash-looping: exited with code 3 after 3 restart(s)', activatedAt: null, image: 'y' },
    { number: 1, status: 'SUPERSEDED', statusReason: 'replaced by revision 4', activatedAt: t(1), image: 'a' },
  ];
  const differsFrom = (image: string) => (r: { image: string }) => r.image !== image;

  it('skips FAILED revisions and ones superseded before they served', () => {
    expect(pickPreviousRevision(revs, 4, differsFrom('c'))?.number).toBe(1);
    expect(pickPreviousRevision(revs, 6, differsFrom('z'))?.number).toBe(4);
  });
  it('skips revisions that run the same as the current one, and answers undefined when nothing is left', () => {
    expect(pickPreviousRevision(revs, 4, differsFrom('a'))).toBeUndefined();
    expect(pickPreviousRevision(revs, 1, () => true)).toBeUndefined();
  });
  it('a superseded revision that once served counts; activatedAt is what says so', () => {
    expect(reachedActive(revs[4]!)).toBe(true);
    expect(reachedActive(revs[0]!)).toBe(false);
    expect(reachedActive({ status: 'ACTIVE', activatedAt: null })).toBe(true);
  });
  it('names why a target never became active', () => {
    expect(neverActiveReason(revs[3]!)).toBe('revision 2 never became active (FAILED: 1/1 started replica(s) crash-looping: exited with code 3 after 3 restart(s))');
    expect(neverActiveReason(revs[0]!)).toBe('revision 5 never became active (SUPERSEDED before it became active: replaced by revision 6)');
    expect(neverActiveReason({ number: 7, status: 'ROLLING_OUT', statusReason: null, activatedAt: null })).toBe('revision 7 never became active (still ROLLING_OUT)');
    expect(neverActiveReason(revs[1]!)).toBeNull();
  });
});
