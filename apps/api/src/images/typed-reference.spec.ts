import { parseReference } from '@berth/oci';
import { displayReference, typedReference } from './images.service';

const D = `sha256:${'a'.repeat(64)}`;

describe('references kept as typed', () => {
  it('drops a digest glued to a tag (the digest is stored beside it), keeps a digest typed alone', () => {
    expect(typedReference(parseReference(`127.0.0.1:5000/team/web:v2@${D}`))).toBe('127.0.0.1:5000/team/web:v2');
    expect(typedReference(parseReference('127.0.0.1:5000/team/web:v2'))).toBe('127.0.0.1:5000/team/web:v2');
    expect(typedReference(parseReference(`127.0.0.1:5000/team/web@${D}`))).toBe(`127.0.0.1:5000/team/web@${D}`);
  });

  it('shows rows stored glued the same way', () => {
    expect(displayReference(`127.0.0.1:5000/team/web:v2@${D}`)).toBe('127.0.0.1:5000/team/web:v2');
    expect(displayReference(`127.0.0.1:5000/team/web@${D}`)).toBe(`127.0.0.1:5000/team/web@${D}`);
    expect(displayReference('docker.io/library/nginx:1.27')).toBe('docker.io/library/nginx:1.27');
  });
});
