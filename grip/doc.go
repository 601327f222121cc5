// Package grip speaks the protocol side of GRIP (Generic Realtime Intermediary Protocol, as Pushpin and
// Fastly Fanout define it), so functions written for those proxies run behind sseedge unchanged. It is
// pure protocol: it parses and checks, it holds no streams and makes no calls.
//
//   - ParseInstruct reads a function's answer (its Grip-* instruct headers and its body) into an
//     Instruct: hold a stream subscribed to channels, or pass the answer through.
//   - ParsePublish reads a GRIP publish body ({"items": [...]}, as @fanoutio/grip's Publisher posts it
//     to {control URI}/publish/) into items of events, or closes, per topic.
//   - ParseSSE turns SSE text (an initial body, an item's http-stream content) into events.
//   - Signer makes the Grip-Sig of a call to a function; ControlVerifier and Authorizer check the
//     Authorization of a publish.
//   - ChannelTopic and TopicChannel map GRIP channels to sseedge topics and back.
//
// Errors are *Error values with a Code and the HTTP status the edge should answer (502 for a function's
// bad answer, 501 for Grip-Hold: response, 400/413 for a bad publish, 401 for a refused one). See
// docs/grip.md for the formats supported and what differs from Pushpin.
package grip
