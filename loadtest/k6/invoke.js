// invoke.js: load on POST /invoke/{fn}, synchronous function invocations through the edge.
//
// The function must be registered first; setup() registers it when FN_ENDPOINT is given (POST
// /admin/functions), else it expects FN to exist. Async invocations deliver their result over a client's
// SSE stream, which k6 cannot read (no SSE support): measure those with the Go load generator
// (`go run ./loadtest invoke`). This script measures the sync round trip and its error rate.
//
// Run (k6 is not vendored; install it once, it takes a few minutes to build):
//
//	go install go.k6.io/k6@v1.8.1
//	go run ./cmd/edge &
//	k6 run -e FN=echo -e FN_ENDPOINT=http://127.0.0.1:9000/echo loadtest/k6/invoke.js
//	k6 run -e BASE_URL=http://127.0.0.1:8080 -e FN=echo -e RATE=200 -e DURATION=1m \
//	       -e ADMIN_TOKEN=$ADMIN_TOKEN loadtest/k6/invoke.js
//
// FN_ENDPOINT must be reachable under FUNCTION_ALLOW (loopback is allowed while no secrets are set).
// Thresholds: p(99) of the invoke round trip under P99_MS (default 50 ms: the function's own time plus
// the edge's overhead, whose target is 2 ms at p99) and fewer than 1% failed requests.
import http from 'k6/http';
import { check, fail } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const FN = __ENV.FN || 'echo';
const FN_ENDPOINT = __ENV.FN_ENDPOINT || '';
const RATE = parseInt(__ENV.RATE || '100', 10); // invocations per second
const DURATION = __ENV.DURATION || '30s';
const P99_MS = parseInt(__ENV.P99_MS || '50', 10);
const TOKEN = __ENV.ADMIN_TOKEN || '';

export const options = {
  scenarios: {
    invoke: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 20,
      maxVUs: 200,
    },
  },
  thresholds: {
    'http_req_duration{name:POST /invoke/{fn}}': [`p(99)<${P99_MS}`],
    'http_req_failed{name:POST /invoke/{fn}}': ['rate<0.01'],
    checks: ['rate>0.99'],
  },
};

function headers() {
  const h = { 'Content-Type': 'application/json' };
  if (TOKEN) {
    h.Authorization = `Bearer ${TOKEN}`;
  }
  return h;
}

export function setup() {
  if (!FN_ENDPOINT) {
    return;
  }
  const res = http.post(
    `${BASE_URL}/admin/functions`,
    JSON.stringify({ name: FN, endpoint: FN_ENDPOINT, method: 'POST', timeout: 10 }),
    { headers: headers(), tags: { name: 'POST /admin/functions' } },
  );
  // 409: already registered by an earlier run.
  if (res.status !== 200 && res.status !== 201 && res.status !== 409) {
    fail(`registering ${FN}: ${res.status} ${res.body}`);
  }
}

export default function () {
  const body = JSON.stringify({ payload: { vu: __VU, iter: __ITER } });
  const res = http.post(`${BASE_URL}/invoke/${FN}`, body, {
    headers: headers(),
    tags: { name: 'POST /invoke/{fn}' },
  });
  check(res, {
    'status is 200': (r) => r.status === 200,
  });
}
