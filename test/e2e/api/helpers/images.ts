import crypto from 'node:crypto';
import { makeLayer, pushImage, REGISTRY, type PushedImage } from '../../../integration/oci/helpers/image-builder';

export { REGISTRY };

/** A unique repository under berth-api-test/ so parallel runs never share tags. */
export const uniqueRepo = (name: string) => `berth-api-test/${name}-${crypto.randomBytes(4).toString('hex')}`;

/** Pushes a one-layer image whose content (and so digest) depends on `content`. */
export async function pushWebImage(repo: string, tag: string, content: string): Promise<PushedImage> {
  const layer = await makeLayer([
    { name: 'www/', type: 'directory' },
    { name: 'www/index.html', content },
  ]);
  return pushImage(repo, tag, [layer], { config: { Cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], ExposedPorts: { '8080/tcp': {} } } });
}
