import { pickRevisionByTag } from './services.service';

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
