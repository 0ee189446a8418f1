import type { NodeScorer } from './plugin';
import { utilisationAfter } from './spread.scorer';

/** BINPACK strategy: prefer the fullest node that still fits, leaving whole nodes free for big replicas. */
export const binpackScorer: NodeScorer = {
  name: 'binpack',
  weight: (req) => (req.strategy === 'BINPACK' ? 10 : 0),
  score: (node, req) => utilisationAfter(node, req.resources),
};
