/**
 * The floor a bootstrap key (OPSFLOW_API_KEYS, the dev stack's key file) must clear: at least 32 characters, at least
 * 12 of them different. `openssl rand -hex 32` (64 characters of 16) and the keys opsflow makes clear it by far;
 * a word, a repeated pattern or a short string does not. A bootstrap key is an admin key, and its id in the logs is a
 * prefix of its SHA-256: for a key of 128 bits and more that prefix gives nothing away, for a guessable one it is an
 * offline oracle — so the key must not be guessable.
 */
export const strongKey = (key: string): boolean => key.length >= 32 && new Set(key).size >= 12;
