/**
 * Preloaded into a service process (node --require, through NODE_OPTIONS) by tests that check
 * what the service loads: on exit, writes the files of every CommonJS module it loaded to
 * LOADED_MODULES_FILE, with "%p" in it replaced by the process id (cluster workers inherit the
 * variable). Plain CommonJS without imports, so Node runs it as it is (type stripping).
 */
{
  const file = process.env.LOADED_MODULES_FILE;
  if (file !== undefined) {
    process.on('exit', () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS script: no import statement
      const { writeFileSync } = require('node:fs') as typeof import('node:fs');
      writeFileSync(file.replace('%p', String(process.pid)), JSON.stringify(Object.keys(require.cache)));
    });
  }
}
