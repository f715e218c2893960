// Verifies hw-flush's Standard Webhooks signatures with the specification's
// own JavaScript library (npm "standardwebhooks", pinned in tests/node/).
// stdin: {"secret": "whsec_...", "requests": [{"headers": {...}, "body": base64}]}
// stdout: one line per request, "ok" or the library's error.
"use strict";
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
    const job = JSON.parse(input);
    const wh = new Webhook(job.secret);
    for (const req of job.requests) {
        try {
            // A Buffer, as a web framework hands over the raw body; the form
            // is not JSON, so the library is told not to parse it.
            wh.verify(Buffer.from(req.body, "base64"), req.headers, { jsonParse: false });
            console.log("ok");
        } catch (e) {
            console.log(`${e.name}: ${e.message}`);
        }
    }
});
