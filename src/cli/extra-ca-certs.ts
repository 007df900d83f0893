/**
 * Gives back the NODE_EXTRA_CA_CERTS that the executable's sh prelude kept
 * from node (node 20 parses every certificate it names at start-up), for what
 * ckpt starts (`ckpt run`).
 */
const saved = process.env.CKPT_EXTRA_CA_CERTS;
if (saved !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = saved;
  delete process.env.CKPT_EXTRA_CA_CERTS;
}
