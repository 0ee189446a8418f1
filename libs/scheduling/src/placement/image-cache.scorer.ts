import type { NodeScorer } from './plugin';

/** A node that already has the image's layers starts the replica without a pull. */
export const imageCacheScorer: NodeScorer = {
  name: 'image-cache',
  weight: () => 2,
  score: (node, req) => (node.cachedImages.includes(req.imageDigest) ? 1 : 0),
};
