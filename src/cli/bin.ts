/**
 * The ckpt executable (dist/bin/ckpt.js, behind the shell prelude that
 * scripts/bundle.mjs puts first): notes when node's own start-up ended (for
 * -v), gives back the NODE_EXTRA_CA_CERTS the prelude kept from node, then
 * loads the command line.
 */
// First: its start mark is when node's own start-up ended.
import './startup.js';
const saved = process.env.CKPT_EXTRA_CA_CERTS;
if (saved !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = saved;
  delete process.env.CKPT_EXTRA_CA_CERTS;
}
await import('./main.js');
