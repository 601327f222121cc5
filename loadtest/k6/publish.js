// publish.js: load on POST /publish/{topic}, the publish half of sseedge's fan-out.
//
// k6 has no Server-Sent Events support, so it cannot hold or read streams: the subscribers, deliveries
// and publish-to-delivery latency are measured by the Go load generator (`go run ./loadtest fanout`),
// which can run at the same time to give the publishes an audience. This script measures the publish
// API itself: its latency and error rate at a steady arrival rate.
//
// Run (k6 is not vendored; install it once, it takes a few minutes to build):
//
//	go install go.k6.io/k6@v1.8.1
//	go run ./cmd/edge &                                   # or any edge node / load balancer
//	k6 run loadtest/k6/publish.js
//	k6 run -e BASE_URL=http://127.0.0.1:8080 -e TOPIC=/bench -e RATE=500 -e DURATION=1m \
//	       -e ADMIN_TOKEN=$ADMIN_TOKEN loadtest/k6/publish.js
//
// Optional audience while it runs:  go run ./loadtest fanout -subs 10000 -topic /bench -events 0
//
// Thresholds (k6 exits non-zero when one fails): p(99) of the publish round trip under 50 ms and fewer
// than 1% failed requests.
import http from 'k6/http';
import { check } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const TOPIC = (__ENV.TOPIC || '/bench').replace(/^\/+/, '');
const RATE = parseInt(__ENV.RATE || '200', 10); // publishes per second
const DURATION = __ENV.DURATION || '30s';
const TOKEN = __ENV.ADMIN_TOKEN || '';

export const options = {
  scenarios: {
    publish: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 20,
      maxVUs: 200,
    },
  },
  thresholds: {
    http_req_duration: ['p(99)<50'],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
  },
};

const params = {
  headers: Object.assign(
    { 'Content-Type': 'application/json' },
    TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {},
  ),
  tags: { name: 'POST /publish/{topic}' },
};

export default function () {
  const body = JSON.stringify({
    event: 'k6',
    data: { vu: __VU, iter: __ITER, sent_ms: Date.now() },
  });
  const res = http.post(`${BASE_URL}/publish/${TOPIC}`, body, params);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'returns the event id': (r) => {
      try {
        return typeof r.json('id') === 'string';
      } catch (e) {
        return false;
      }
    },
  });
}
