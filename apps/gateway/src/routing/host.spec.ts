import { parseServiceHost } from './host';

describe('parseServiceHost', () => {
  it('splits <service>.<project>.<base-domain>, ignoring port, case and a trailing dot', () => {
    expect(parseServiceHost('web.acme.localhost', 'localhost')).toEqual({ service: 'web', project: 'acme' });
    expect(parseServiceHost('Web.ACME.localhost:8000', 'localhost')).toEqual({ service: 'web', project: 'acme' });
    expect(parseServiceHost('api.shop.apps.example.com.', 'apps.example.com')).toEqual({ service: 'api', project: 'shop' });
  });
  it('rejects hosts outside the base domain, with too few or too many labels, or with invalid labels', () => {
    for (const h of [undefined, '', 'localhost', 'acme.localhost', 'a.b.c.localhost', 'web.acme.example.com', '-web.acme.localhost', 'we_b.acme.localhost', '[::1]:80', 'web.acmelocalhost']) {
      expect(parseServiceHost(h, 'localhost')).toBeNull();
    }
  });
});
