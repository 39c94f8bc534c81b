// Bench 4's upstream: stands where Immich would (127.0.0.1:PORT), reads every request body, throws it
// away and answers with the number of bytes it counted. Prints "listening" once ready.
import http from 'node:http';

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  let bytes = 0;
  req.on('data', (chunk) => {
    bytes += chunk.length;
  });
  req.on('end', () => res.end(String(bytes)));
});
server.listen(port, '127.0.0.1', () => console.log('listening'));
// Never outlive a crashed bench by long.
setTimeout(() => process.exit(0), 30 * 60_000).unref();
