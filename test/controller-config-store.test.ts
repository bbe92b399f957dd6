import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { CONFIG_STORE_VERSION, ConfigStore } from "../src/controller/config-store.js";
import type { Configuration } from "../src/management/types.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "zmgmt-config-store-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sample(id: string, port?: number): Configuration {
  return {
    id,
    instances: [
      { name: "instance-1", host: "127.0.0.1", listenPort: 2151 },
      { name: "instance-2", host: "0.0.0.0" },
    ],
    nodes: [
      {
        name: "manager",
        instance: "instance-1",
        role: "MANAGER",
        state: "RUNNING",
        ...(port === undefined ? {} : { port }),
        metricsPort: 9000,
        scripts: ["local.zeek"],
        options: [{ name: "a", value: "b" }],
        cpuAffinity: 2,
        env: { FOO: "bar" },
      },
      { name: "worker", instance: "instance-2", role: "WORKER", state: "RUNNING", interface: "eth0", env: {} },
    ],
  };
}

async function open(): Promise<ConfigStore> {
  const { store, error } = await ConfigStore.open(dir);
  expect(error).toBeUndefined();
  return store;
}

describe("ConfigStore", () => {
  it("starts empty in a fresh directory, creating it if needed", async () => {
    const nested = join(dir, "a", "b");
    const { store, error } = await ConfigStore.open(nested);
    expect(error).toBeUndefined();
    expect(store.get("STAGED")).toBeUndefined();
    expect(store.get("READY")).toBeUndefined();
    expect(store.get("DEPLOYED")).toBeUndefined();
    expect(await readdir(nested)).toEqual([]);
  });

  it("round-trips every field", async () => {
    const store = await open();
    await store.set("DEPLOYED", sample("c1", 2200));
    expect(store.get("DEPLOYED")).toEqual(sample("c1", 2200));
    expect(store.has("DEPLOYED")).toBe(true);
    expect(store.has("STAGED")).toBe(false);
  });

  it("hands out copies and keeps its own", async () => {
    const store = await open();
    const config = sample("c1");
    await store.set("STAGED", config);
    config.id = "changed-by-caller";
    const got = store.get("STAGED")!;
    got.nodes[0]!.env.FOO = "changed";
    expect(store.get("STAGED")).toEqual(sample("c1"));
  });

  it("persists across a new instance, with a version field in the file", async () => {
    const first = await open();
    await first.setMany({ STAGED: sample("s"), READY: sample("r", 2200) });
    await first.set("DEPLOYED", sample("d", 2201));

    const second = await open();
    expect(second.get("STAGED")).toEqual(sample("s"));
    expect(second.get("READY")).toEqual(sample("r", 2200));
    expect(second.get("DEPLOYED")).toEqual(sample("d", 2201));

    const raw = JSON.parse(await readFile(join(dir, "configs.json"), "utf8")) as { version: number; configs: object };
    expect(raw.version).toBe(CONFIG_STORE_VERSION);
    expect(Object.keys(raw.configs).sort()).toEqual(["DEPLOYED", "READY", "STAGED"]);
  });

  it("deletes, and setMany with null deletes while keeping other states", async () => {
    const store = await open();
    await store.setMany({ STAGED: sample("s"), READY: sample("r"), DEPLOYED: sample("d") });
    await store.delete("STAGED");
    await store.setMany({ READY: null, DEPLOYED: sample("d2") });
    expect(store.get("STAGED")).toBeUndefined();
    expect(store.get("READY")).toBeUndefined();
    const reopened = await open();
    expect(reopened.get("STAGED")).toBeUndefined();
    expect(reopened.get("READY")).toBeUndefined();
    expect(reopened.get("DEPLOYED")?.id).toBe("d2");
  });

  it("applies concurrent changes in call order and leaves no temp files", async () => {
    const store = await open();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 25; i++) writes.push(store.set("DEPLOYED", sample(`c${i}`)));
    writes.push(store.set("STAGED", sample("staged")));
    await Promise.all(writes);
    expect(store.get("DEPLOYED")?.id).toBe("c24");
    expect(await readdir(dir)).toEqual(["configs.json"]);
    const reopened = await open();
    expect(reopened.get("DEPLOYED")?.id).toBe("c24");
    expect(reopened.get("STAGED")?.id).toBe("staged");
  });

  it("ignores and removes a temp file left by a write that died before its rename", async () => {
    const store = await open();
    await store.set("DEPLOYED", sample("committed"));
    await writeFile(join(dir, "configs.json.tmp-999-1"), '{"version":1,"configs":{"DEPLOYED":');
    const reopened = await open();
    expect(reopened.get("DEPLOYED")?.id).toBe("committed");
    expect(await readdir(dir)).toEqual(["configs.json"]);
  });

  it("a failed write changes neither memory nor the file, and later writes still work", async () => {
    const store = await open();
    await store.set("DEPLOYED", sample("good"));
    const before = await readFile(join(dir, "configs.json"), "utf8");

    const bad = sample("bad") as Configuration & { self?: unknown };
    bad.self = bad; // cannot be written as JSON
    await expect(store.set("DEPLOYED", bad)).rejects.toThrow();
    expect(store.get("DEPLOYED")?.id).toBe("good");
    expect(await readFile(join(dir, "configs.json"), "utf8")).toBe(before);
    expect(await readdir(dir)).toEqual(["configs.json"]);

    await store.set("STAGED", sample("next"));
    expect((await open()).get("STAGED")?.id).toBe("next");
  });

  it("rejects rather than throws for values that cannot be copied", async () => {
    const store = await open();
    const bad = sample("bad") as Configuration & { fn?: unknown };
    bad.fn = () => undefined;
    const result = store.set("STAGED", bad);
    await expect(result).rejects.toThrow();
    expect(store.get("STAGED")).toBeUndefined();
  });

  const corruptCases: [string, string][] = [
    ["truncated JSON", '{"version":1,"configs":{"DEPLOYED":{"id":"x"'],
    ["wrong version", JSON.stringify({ version: 99, configs: {} })],
    ["unknown state", JSON.stringify({ version: 1, configs: { LIVE: sample("x") } })],
    ["malformed config", JSON.stringify({ version: 1, configs: { DEPLOYED: { id: 5, instances: [], nodes: [] } } })],
    ["malformed node", JSON.stringify({ version: 1, configs: { DEPLOYED: { ...sample("x"), nodes: [{ name: "m" }] } } })],
    ["not an object", "[]"],
  ];

  it.each(corruptCases)("moves a corrupt file aside (%s) and starts empty", async (_label, content) => {
    await writeFile(join(dir, "configs.json"), content);
    const { store, error } = await ConfigStore.open(dir);
    expect(store.get("DEPLOYED")).toBeUndefined();
    expect(error).toMatch(/could not be loaded/);

    const files = await readdir(dir);
    expect(files).toHaveLength(1);
    const aside = files[0]!;
    expect(aside).toMatch(/^configs\.json\.corrupt-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    expect(error).toContain(aside);
    expect(await readFile(join(dir, aside), "utf8")).toBe(content);

    // The store works normally afterwards.
    await store.set("STAGED", sample("fresh"));
    expect((await open()).get("STAGED")?.id).toBe("fresh");
  });

  it("moves an unreadable file aside", async () => {
    // A directory in the file's place cannot be read as a file, even by root.
    await mkdir(join(dir, "configs.json"));
    const { store, error } = await ConfigStore.open(dir);
    expect(error).toMatch(/unreadable/);
    expect(store.get("DEPLOYED")).toBeUndefined();
    const files = await readdir(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^configs\.json\.corrupt-/);
  });

  it("does not overwrite an earlier corrupt copy", async () => {
    for (const content of ["first", "second"]) {
      await writeFile(join(dir, "configs.json"), content);
      const { error } = await ConfigStore.open(dir);
      expect(error).toBeDefined();
    }
    const files = (await readdir(dir)).sort();
    expect(files).toHaveLength(2);
    const contents = await Promise.all(files.map((f) => readFile(join(dir, f), "utf8")));
    expect(contents.sort()).toEqual(["first", "second"]);
  });

  it("uses a custom file name", async () => {
    const { store } = await ConfigStore.open(dir, { fileName: "controller-configs.json" });
    await store.set("DEPLOYED", sample("x"));
    expect(await readdir(dir)).toEqual(["controller-configs.json"]);
    const again = await ConfigStore.open(dir, { fileName: "controller-configs.json" });
    expect(again.store.get("DEPLOYED")?.id).toBe("x");
  });
});
