import { chainIds } from './snapshotter';

// Expected values computed independently with `printf '%s' "$parent $diff" | sha256sum`.
const A = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';
const B = 'sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d';
const C = 'sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6';

describe('chainIds', () => {
  it('is the diff id for the base layer and sha256(parent + " " + diffId) above it', () => {
    expect(chainIds([A, B, C])).toEqual([
      A,
      'sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676',
      'sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106',
    ]);
  });
  it('depends on order and on every layer below', () => {
    expect(chainIds([B, A])[1]).not.toBe(chainIds([A, B])[1]);
    expect(chainIds([A, C])[1]).not.toBe(chainIds([B, C])[1]);
    expect(chainIds([])).toEqual([]);
  });
});
