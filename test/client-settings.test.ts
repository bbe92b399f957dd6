import { describe, it, expect } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IniError } from "../src/client/ini.js";
import { Settings, loadSettings, parseControllerArg, renderSettings } from "../src/client/settings.js";

// show-settings with nothing configured (section 5.2). configparser writes `key = ` with a
// trailing space for empty values.
const DEFAULTS_TEXT =
  "[client]\nrequest_timeout_secs = 20\npeering_attempts = 10\npeering_retry_delay_secs = 1.0\n" +
  "rich_logging_format = False\npretty_json = True\nverbosity = 0\n\n" +
  "[controller]\nhost = 127.0.0.1\nport = 2149\n\n" +
  "[ssl]\nenable = False\ncertificate = \nkeyfile = \ncafile = \ncapath = \npassphrase = \n\n";

const files = (map: Record<string, string>) => (path: string) => map[path];

describe("defaults", () => {
  it("render exactly as show-settings prints them", () => {
    const { settings, errors, warnings } = loadSettings({}, {}, { readFile: files({}) });
    expect(renderSettings(settings)).toBe(DEFAULTS_TEXT);
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it("read through typed getters", () => {
    const s = new Settings();
    expect(s.getInt("client", "request_timeout_secs")).toBe(20);
    expect(s.getFloat("client", "peering_retry_delay_secs")).toBe(1.0);
    expect(s.getBool("client", "rich_logging_format")).toBe(false);
    expect(s.getBool("client", "pretty_json")).toBe(true);
    expect(s.getBool("ssl", "enable")).toBe(false);
    expect(s.get("ssl", "certificate")).toBe("");
    expect(s.get("controller", "host")).toBe("127.0.0.1");
  });

  it("accept configparser's boolean words and reject others", () => {
    const s = new Settings();
    for (const [word, value] of [
      ["YES", true],
      ["on", true],
      ["1", true],
      ["Off", false],
      ["no", false],
      ["0", false],
    ] as const) {
      s.set("ssl", "enable", word);
      expect(s.getBool("ssl", "enable")).toBe(value);
    }
    s.set("ssl", "enable", "enabled");
    expect(() => s.getBool("ssl", "enable")).toThrow("Not a boolean: enabled");
    s.set("client", "request_timeout_secs", "soon");
    expect(() => s.getInt("client", "request_timeout_secs")).toThrow(IniError);
  });
});

describe("settings file", () => {
  it("overrides defaults and adds sections, keeping default order", () => {
    const { settings, configFile } = loadSettings(
      { configFile: "/etc/zc.cfg" },
      {},
      { readFile: files({ "/etc/zc.cfg": "[client]\nRequest_Timeout_Secs = 10\n\n[extra]\nk = v\n" }) },
    );
    expect(configFile).toBe("/etc/zc.cfg");
    expect(settings.getInt("client", "request_timeout_secs")).toBe(10);
    expect(renderSettings(settings)).toBe(
      DEFAULTS_TEXT.replace("request_timeout_secs = 20", "request_timeout_secs = 10") + "[extra]\nk = v\n\n",
    );
  });

  it("comes from -c, else ZEEK_CLIENT_CONFIG_FILE, else the default path", () => {
    const readFile = files({ "/a": "[client]\nverbosity = 1\n", "/b": "[client]\nverbosity = 2\n", "/c": "[client]\nverbosity = 3\n" });
    const env = { ZEEK_CLIENT_CONFIG_FILE: "/b" };
    expect(loadSettings({ configFile: "/a" }, env, { readFile, defaultConfigFile: "/c" }).settings.getInt("client", "verbosity")).toBe(1);
    expect(loadSettings({}, env, { readFile, defaultConfigFile: "/c" }).settings.getInt("client", "verbosity")).toBe(2);
    expect(loadSettings({}, {}, { readFile, defaultConfigFile: "/c" }).settings.getInt("client", "verbosity")).toBe(3);
  });

  it("is skipped silently when it does not exist or is not a file", () => {
    const dir = mkdtempSync(join(tmpdir(), "zc-settings-"));
    try {
      for (const path of [join(dir, "missing.cfg"), dir]) {
        const res = loadSettings({ configFile: path }, {});
        expect(renderSettings(res.settings)).toBe(DEFAULTS_TEXT);
        expect(res.errors).toEqual([]);
      }
      const real = join(dir, "zc.cfg");
      writeFileSync(real, "[controller]\nport = 3000\n");
      expect(loadSettings({ configFile: real }, {}).settings.getInt("controller", "port")).toBe(3000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with INI syntax errors makes loading fail with the file's name and line", () => {
    let caught: unknown;
    try {
      loadSettings({ configFile: "zc.cfg" }, {}, { readFile: files({ "zc.cfg": "[client]\nverbosity = 1\nverbosity = 2\n" }) });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(IniError);
    expect((caught as IniError).message).toBe(
      "While reading from 'zc.cfg' [line  3]: option 'verbosity' in section 'client' already exists",
    );
    // Valueless keys are not allowed in the settings file.
    expect(() => loadSettings({ configFile: "x" }, {}, { readFile: files({ x: "[client]\nverbosity\n" }) })).toThrow(IniError);
  });
});

describe("overrides", () => {
  it("ZEEK_CLIENT_CONFIG_SETTINGS is a shell-quoted list of section.key=value", () => {
    const { settings, errors } = loadSettings({}, { ZEEK_CLIENT_CONFIG_SETTINGS: 'client.request_timeout_secs=23 server.FOO="1 2 3"' });
    expect(errors).toEqual([]);
    expect(settings.getInt("client", "request_timeout_secs")).toBe(23);
    expect(settings.get("server", "FOO")).toBe("1 2 3");
    expect(settings.get("server", "foo")).toBe("1 2 3");
  });

  it("apply in order: defaults < file < env < --set < --controller < -v", () => {
    const { settings } = loadSettings(
      {
        configFile: "f",
        set: ["client.peering_attempts=3", "controller.host=from-set", "controller.port=1111"],
        controller: "from-arg",
        verbose: 3,
      },
      { ZEEK_CLIENT_CONFIG_SETTINGS: "client.peering_attempts=2 client.request_timeout_secs=5 client.verbosity=1" },
      { readFile: files({ f: "[client]\npeering_attempts = 1\nrequest_timeout_secs = 4\npretty_json = no\n" }) },
    );
    expect(settings.getBool("client", "pretty_json")).toBe(false);
    expect(settings.getInt("client", "request_timeout_secs")).toBe(5);
    expect(settings.getInt("client", "peering_attempts")).toBe(3);
    expect(settings.get("controller", "host")).toBe("from-arg");
    expect(settings.getInt("controller", "port")).toBe(1111);
    expect(settings.getInt("client", "verbosity")).toBe(3);
  });

  it("--set values keep spaces and `=`", () => {
    const { settings } = loadSettings({ set: ["server.FOO=1 2 3", "a.b=c=d"] }, {});
    expect(settings.get("server", "foo")).toBe("1 2 3");
    expect(settings.get("a", "b")).toBe("c=d");
  });

  it("reports malformed items and carries on", () => {
    const { settings, errors } = loadSettings(
      { set: ["nodot=1", "client.verbosity", "DEFAULT.x=1", "client.verbosity=2", "ssl.passphrase=50%"] },
      { ZEEK_CLIENT_CONFIG_SETTINGS: "bogus client.peering_attempts=7" },
    );
    expect(errors).toEqual([
      'config item "bogus" in ZEEK_CLIENT_CONFIG_SETTINGS invalid. Please use <section.key>=<val>.',
      'config item "nodot=1" invalid. Please use <section.key>=<val>.',
      'config item "client.verbosity" invalid. Please use <section.key>=<val>.',
      'config item "DEFAULT.x=1" invalid. Please use <section.key>=<val>.',
      'config item "ssl.passphrase=50%" invalid. Please use <section.key>=<val>.',
    ]);
    expect(settings.getInt("client", "peering_attempts")).toBe(7);
    expect(settings.getInt("client", "verbosity")).toBe(2);
    expect(settings.get("ssl", "passphrase")).toBe("");
  });

  it("reports unbalanced quotes in ZEEK_CLIENT_CONFIG_SETTINGS", () => {
    const { errors, settings } = loadSettings({}, { ZEEK_CLIENT_CONFIG_SETTINGS: 'client.verbosity="2' });
    expect(errors).toEqual(["cannot parse ZEEK_CLIENT_CONFIG_SETTINGS: No closing quotation"]);
    expect(settings.getInt("client", "verbosity")).toBe(0);
  });

  it("--set of an escaped percent reads back as one percent", () => {
    const { settings } = loadSettings({ set: ["ssl.passphrase=50%%"] }, {});
    expect(settings.get("ssl", "passphrase")).toBe("50%");
  });

  it("setting ssl.disable only warns", () => {
    const { settings, warnings } = loadSettings({ set: ["ssl.disable=true"] }, {});
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("ssl.disable");
    expect(settings.getBool("ssl", "enable")).toBe(false);
  });

  it("no -v leaves verbosity alone", () => {
    expect(loadSettings({ verbose: 0 }, { ZEEK_CLIENT_CONFIG_SETTINGS: "client.verbosity=2" }).settings.getInt("client", "verbosity")).toBe(
      2,
    );
  });
});

describe("--controller", () => {
  it("splits every documented form", () => {
    expect(parseControllerArg("foo")).toEqual({ host: "foo" });
    expect(parseControllerArg("foo:")).toEqual({ host: "foo" });
    expect(parseControllerArg(":2222")).toEqual({ port: "2222" });
    expect(parseControllerArg("foo:2222")).toEqual({ host: "foo", port: "2222" });
    expect(parseControllerArg("[fe80::1]:2222")).toEqual({ host: "[fe80::1]", port: "2222" });
    expect(parseControllerArg("[fe80::1]")).toEqual({ host: "[fe80::1]" });
    expect(parseControllerArg("[fe80::1]:")).toEqual({ host: "[fe80::1]" });
  });

  it("changes only the parts given", () => {
    const load = (controller: string) => {
      const { settings } = loadSettings({ controller }, {});
      return [settings.get("controller", "host"), settings.getInt("controller", "port")];
    };
    expect(load("foo")).toEqual(["foo", 2149]);
    expect(load("foo:")).toEqual(["foo", 2149]);
    expect(load(":2222")).toEqual(["127.0.0.1", 2222]);
    expect(load("foo:2222")).toEqual(["foo", 2222]);
    expect(load("[fe80::1]:2222")).toEqual(["[fe80::1]", 2222]);
  });

  it("shows up in show-settings", () => {
    const { settings } = loadSettings({ controller: "10.1.1.1:4000", verbose: 2 }, {});
    expect(renderSettings(settings)).toBe(
      DEFAULTS_TEXT.replace("host = 127.0.0.1", "host = 10.1.1.1")
        .replace("port = 2149", "port = 4000")
        .replace("verbosity = 0", "verbosity = 2"),
    );
  });
});
