/**
 * Retries: the backoff is bounded and jittered; a dropped answer, a 503 or a
 * server that is not up yet is retried with the same idempotency id, so the
 * command applies exactly once; failures that cannot heal are not retried.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { SwooshApiError, SwooshClient, backoffDelayMs } from "../../src/client/index.ts";
import { retryAfterMsOf } from "../../src/client/errors.ts";
import { withRetry } from "../../src/client/retry.ts";
import { TestProxy, delay, startTestServer } from "./helpers.ts";

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function commandBodies(proxy: TestProxy, path = "/command"): Array<{ type: string; id?: string }> {
  return proxy.requests.filter((request) => request.path === path).map((request) => JSON.parse(request.body) as { type: string; id?: string });
}

describe("retry policy", () => {
  it("waits between half and all of min(max, base·2^(n−1)), growing to the cap", () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(backoffDelayMs(1, policy, () => 0), 50);
    assert.equal(backoffDelayMs(1, policy, () => 1), 100);
    assert.equal(backoffDelayMs(3, policy, () => 0), 200);
    assert.equal(backoffDelayMs(3, policy, () => 1), 400);
    assert.equal(backoffDelayMs(10, policy, () => 0), 500);
    assert.equal(backoffDelayMs(10, policy, () => 1), 1000);
    assert.equal(backoffDelayMs(1_000, policy, () => 1), 1000);
    for (let retry = 1; retry < 12; retry++) {
      const delayMs = backoffDelayMs(retry, policy);
      const capMs = Math.min(1000, 100 * 2 ** (retry - 1));
      assert.ok(delayMs >= capMs / 2 && delayMs <= capMs, `retry ${retry}: ${delayMs}`);
    }
  });

  it("is bounded in attempts and in elapsed time, and never retries what cannot heal", async () => {
    const failing = new SwooshApiError("network_error", "down", 0);
    let tries = 0;
    await assert.rejects(
      withRetry(async () => {
        tries++;
        throw failing;
      }, () => true, { attemptsMax: 4, baseDelayMs: 1, maxDelayMs: 2, elapsedMaxMs: 10_000 }),
      (error) => error === failing,
    );
    assert.equal(tries, 4);

    let clockMs = 0;
    tries = 0;
    await assert.rejects(
      withRetry(
        async () => {
          tries++;
          clockMs += 400;
          throw failing;
        },
        () => true,
        { attemptsMax: 100, baseDelayMs: 1, maxDelayMs: 1, elapsedMaxMs: 1000 },
        { nowMs: () => clockMs },
      ),
    );
    assert.equal(tries, 3);

    tries = 0;
    await assert.rejects(
      withRetry(async () => {
        tries++;
        throw new SwooshApiError("stale_lease", "no", 409);
      }, (error) => error instanceof SwooshApiError && error.retryable, { attemptsMax: 5, baseDelayMs: 1, maxDelayMs: 1, elapsedMaxMs: 1000 }),
    );
    assert.equal(tries, 1);
  });
});

describe("client retries", () => {
  it("sends a command again with the same id when its answer is lost: applied once, first outcome back", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const client = new SwooshClient({ url: proxy.url, retry: { baseDelayMs: 10 } });
    await client.registerAgent({ agentId: "w", capacity: 2 });

    proxy.dropAnswers((request) => request.path === "/command" && request.body.includes("task.submit"));
    const submitted = await client.submitTask({ taskId: "t", kind: "k" });
    assert.equal(submitted.duplicate, true, "the retry got the first outcome");
    const submits = commandBodies(proxy).filter((body) => body.type === "task.submit");
    assert.equal(submits.length, 2);
    assert.ok(submits[0]?.id !== undefined && submits[0].id === submits[1]?.id);

    // A claim — not idempotent by itself — is safe the same way: the retry gets the same lease.
    await client.submitTask({ taskId: "u", kind: "k" });
    proxy.dropAnswers((request) => request.path === "/commands");
    const [claim] = await client.commands([{ type: "task.claim", payload: { agentId: "w", limit: 2 } }]);
    assert.ok(claim.ok && claim.duplicate === true);
    assert.deepEqual(claim.result.leases.map((lease) => lease.taskId), ["t", "u"]);
    const log = await client.readLog({ limit: 1000 });
    assert.equal(log.entries.filter((entry) => entry.type === "task.submit").length, 2);
    assert.equal(log.entries.filter((entry) => entry.type === "task.claim").length, 1);
  });

  it("waits at least as long as a 503's Retry-After asks", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const delays: number[] = [];
    const client = new SwooshClient({ url: proxy.url, retry: { baseDelayMs: 10 }, onRetry: ({ delayMs }) => delays.push(delayMs) });
    proxy.fail503((request) => request.path === "/command", 1, "1");
    const startedMs = Date.now();
    assert.equal((await client.registerAgent({ agentId: "patient" })).result.created, true);
    assert.deepEqual(delays, [1000]);
    assert.ok(Date.now() - startedMs >= 1000);
    assert.equal(retryAfterMsOf("7"), 7000);
    assert.equal(retryAfterMsOf(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(retryAfterMsOf("soon"), undefined);
    assert.equal(retryAfterMsOf(null), undefined);
  });

  it("retries 503 answers with the same id", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const retries: number[] = [];
    const client = new SwooshClient({ url: proxy.url, retry: { baseDelayMs: 10 }, onRetry: ({ retry }) => retries.push(retry) });
    proxy.fail503((request) => request.path === "/command", 2);
    assert.equal((await client.registerAgent({ agentId: "w" })).result.created, true);
    const bodies = commandBodies(proxy);
    assert.equal(bodies.length, 3);
    assert.equal(new Set(bodies.map((body) => body.id)).size, 1);
    assert.deepEqual(retries, [1, 2]);
  });

  it("keeps trying while the server is down and succeeds once it is up; gives up when the attempts are used", async (t) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const down = new SwooshClient({ url, retry: { attemptsMax: 3, baseDelayMs: 5, maxDelayMs: 10 } });
    await assert.rejects(down.healthz(), (error) => error instanceof SwooshApiError && error.code === "network_error" && error.status === 0);

    const client = new SwooshClient({ url, retry: { attemptsMax: 60, baseDelayMs: 20, maxDelayMs: 100 } });
    const pending = client.registerAgent({ agentId: "late" });
    await delay(300);
    await startTestServer(t, { port });
    const answer = await pending;
    assert.equal(answer.result.created, true);
  });

  it("refuses a body that is not JSON at once as bad_request, sending nothing and retrying nothing; a url without a scheme at construction", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const retries: number[] = [];
    const client = new SwooshClient({ url: proxy.url, retry: { baseDelayMs: 50 }, onRetry: ({ retry }) => retries.push(retry) });
    const notJson: Array<[string, unknown]> = [
      ["NaN", Number.NaN],
      ["Infinity", Number.POSITIVE_INFINITY],
      ["undefined", undefined],
      ["a BigInt", 1n],
      ["a Date", new Date(0)],
      ["a lone surrogate", "\ud800"],
    ];
    for (const [what, value] of notJson) {
      await assert.rejects(
        client.submitTask({ taskId: "t", kind: "k", payload: { x: value } as never }),
        (error) => error instanceof SwooshApiError && error.code === "bad_request" && error.status === 0 && !error.retryable && /\/payload\/payload\/x/.test(error.message),
        what,
      );
    }
    assert.deepEqual(retries, [], "refused at once: no retry");
    assert.equal(commandBodies(proxy).length, 0, "nothing was sent");
    // JSON.stringify would have sent {"x":null} or {}; the server holds no such task.
    await assert.rejects(client.getTask("t"), (error) => error instanceof SwooshApiError && error.code === "unknown_task");

    for (const bad of ["localhost:7777", "127.0.0.1:7777", "ftp://127.0.0.1:7777", "not a url"]) {
      assert.throws(() => new SwooshClient({ url: bad }), TypeError, bad);
    }
    assert.equal(new SwooshClient({ url: `${url}//` }).url, url, "trailing slashes still go");
  });
});
