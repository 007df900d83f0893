/** The image format: the public surface of image/. */
export * from './record.js';
export * from './schema.js';
export * from './registry.js';
export * from './header.js';
export * from './reader.js';
export * from './writer.js';
export * from './pages.js';
export * from './dir.js';
export * from './view.js';
