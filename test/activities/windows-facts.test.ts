// Windows facts (CIM over WinRM) end to end: the facts script runs over real WinRM against the
// WS-Man stand-in (Windows cannot run here; the stand-in answers Get-CimInstance / Get-ItemProperty
// from its `hardware` model), through the collectHostFacts activity into the database, and through
// a whole onboarding (API → host-onboarding workflow on the real Temporal dev server) of a host with
// Windows' default WinRM configuration (HTTP, NTLM with message encryption by pyspnego's acceptor).
// AdapterRAM is a uint32: cards with 4 GiB or more read 4095 MiB there; the registry's 64-bit
// qwMemorySize is used where present, and the cap is reported where not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WINDOWS_FACTS_SCRIPT, compareExpectedGpus, parseWindowsFacts } from '../../activities/remote/facts.js';
import { createOnboardingActivities } from '../../activities/remote/onboarding.activities.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { credentialContext } from '../../activities/remote/host-targets.js';
import { HostCredentialSchema, HostSchema } from '../../db/entities/index.js';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { createLogger } from '../../config/logger.js';
import { startWsManHost, type StandInHardware, type WsManHost } from '../helpers/wsman-host.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

const GIB = 2 ** 30;
const A6000_PNP = 'PCI\\VEN_10DE&DEV_2230&SUBSYS_145910DE&REV_A1\\4&2A1B4C3D&0&0000';
/** A GPU box: two 48 GiB A6000s the driver reports in the registry, one 16 GiB T4 it does not. */
const gpuBox = (name: string): StandInHardware => ({
  classes: {
    Win32_Processor: [
      { Name: 'AMD EPYC 7543 32-Core Processor             ', NumberOfCores: 32, NumberOfLogicalProcessors: 64 },
      { Name: 'AMD EPYC 7543 32-Core Processor             ', NumberOfCores: 32, NumberOfLogicalProcessors: 64 },
    ],
    Win32_ComputerSystem: [{ Name: name, TotalPhysicalMemory: 274_743_717_888 }],
    Win32_OperatingSystem: [{ Caption: 'Microsoft Windows Server 2022 Datacenter', Version: '10.0.20348', BuildNumber: '20348' }],
    Win32_DiskDrive: [
      { DeviceID: '\\\\.\\PHYSICALDRIVE0', Size: 1_920_383_410_176, Model: 'SAMSUNG MZ1L21T9HCLS-00A07', MediaType: 'Fixed hard disk media' },
      { DeviceID: '\\\\.\\PHYSICALDRIVE1', Size: 7_681_501_126_656, Model: 'INTEL SSDPE2KE076T8', MediaType: 'Fixed hard disk media' },
    ],
    Win32_VideoController: [
      { Name: 'NVIDIA RTX A6000', AdapterRAM: 4_293_918_720, DriverVersion: '31.0.15.5186', PNPDeviceID: A6000_PNP },
      { Name: 'NVIDIA RTX A6000', AdapterRAM: 4_293_918_720, DriverVersion: '31.0.15.5186', PNPDeviceID: A6000_PNP.replace('0000', '0001') },
      { Name: 'NVIDIA Tesla T4', AdapterRAM: 4_294_967_295, DriverVersion: '31.0.15.5186', PNPDeviceID: 'PCI\\VEN_10DE&DEV_1EB8&SUBSYS_12A210DE&REV_A1\\4&1&0&0008' },
      { Name: 'Microsoft Basic Display Adapter', AdapterRAM: 0, DriverVersion: '10.0.20348.1', PNPDeviceID: 'PCI\\VEN_1234&DEV_1111&SUBSYS_00000000&REV_02\\3&1&0&10' },
    ],
  },
  displayClassKeys: [
    { DriverDesc: 'NVIDIA RTX A6000', MatchingDeviceId: 'pci\\ven_10de&dev_2230&subsys_145910de', 'HardwareInformation.qwMemorySize': 48 * GIB },
    // Some drivers store it as REG_BINARY: ConvertTo-Json prints the 8 bytes.
    { DriverDesc: 'Microsoft Basic Display Adapter', MatchingDeviceId: 'pci\\ven_1234&dev_1111', 'HardwareInformation.qwMemorySize': [0, 0, 0, 1, 0, 0, 0, 0] },
  ],
});

const EXPECTED_GPUS = [
  { index: 0, model: 'NVIDIA RTX A6000', memoryMiB: 49152, driver: '31.0.15.5186', memorySource: 'registry' },
  { index: 1, model: 'NVIDIA RTX A6000', memoryMiB: 49152, driver: '31.0.15.5186', memorySource: 'registry' },
  { index: 2, model: 'NVIDIA Tesla T4', memoryMiB: 4096, driver: '31.0.15.5186', memorySource: 'adapter-ram', memoryCapped: true },
  { index: 3, model: 'Microsoft Basic Display Adapter', memoryMiB: 16, driver: '10.0.20348.1', memorySource: 'registry' },
];

describe('Windows facts: the parser', () => {
  it('one object prints bare, several as an array; AdapterRAM at the cap without a registry value is reported as capped', () => {
    const out = [
      '===processor===', '{"Name":"Intel Xeon","NumberOfCores":4,"NumberOfLogicalProcessors":8}',
      '===computersystem===', '{"Name":"WIN-1","TotalPhysicalMemory":17179869184}',
      '===os===', '{"Caption":"Microsoft Windows 11 Pro","Version":"10.0.22631","BuildNumber":"22631"}',
      '===disks===', '',
      '===gpus===', '{"Name":"NVIDIA GeForce RTX 4090","AdapterRAM":4293918720,"DriverVersion":"32.0.15.6094","PNPDeviceID":"PCI\\\\VEN_10DE&DEV_2684"}',
      '===gpumemory===', '',
      '===end===',
    ].join('\r\n');
    expect(parseWindowsFacts(`#< CLIXML\r\n${out}\r\n`)).toEqual({
      cpu: { model: 'Intel Xeon', cores: 8, sockets: 1, threadsPerCore: 2 },
      memoryBytes: 17179869184,
      disks: [],
      gpus: [{ index: 0, model: 'NVIDIA GeForce RTX 4090', memoryMiB: 4095, driver: '32.0.15.6094', memorySource: 'adapter-ram', memoryCapped: true }],
      os: { name: 'Microsoft Windows 11 Pro', version: '10.0.22631', kernel: '22631' },
      hostname: 'WIN-1',
    });
  });

  it('the script queries CIM classes and the display class key as an administrator would', () => {
    expect(WINDOWS_FACTS_SCRIPT).toContain('Get-CimInstance -ClassName Win32_VideoController | Select-Object Name, AdapterRAM, DriverVersion, PNPDeviceID | ConvertTo-Json -Compress');
    expect(WINDOWS_FACTS_SCRIPT).toContain("Get-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Class\\{4d36e968-e325-11ce-bfc1-08002be10318}\\0*'");
  });
});

describe('Windows facts: collectHostFacts over WinRM against the stand-in', () => {
  let db: Db;
  let vault: Vault;
  let ws: WsManHost;
  let winrm: WinRmExecutor;
  let ssh: SshExecutor;
  beforeAll(async () => {
    db = await initORM({ pgliteDir: 'memory://' });
    vault = new Vault(generateKeyring('t'));
    ws = await startWsManHost({ https: true, hardware: gpuBox('WIN-GPU-07') });
    winrm = new WinRmExecutor({ em: db.em, vault, connectTimeoutMs: 5000 });
    ssh = new SshExecutor({ em: db.em, vault });
  });
  afterAll(async () => {
    await winrm?.close();
    await ssh?.close();
    await ws?.stop();
    await db?.close();
  });

  it('stores CPU, memory, disks, GPUs (registry memory where the driver has it, the AdapterRAM cap reported where not) and OS', async () => {
    const em = db.em.fork();
    const host = em.create(HostSchema, { slug: 'win-facts', name: 'win-facts', address: '127.0.0.1', port: ws.port, os: 'windows', username: ws.adminUser, winrmPort: ws.port, winrmHttps: true, winrmAuth: 'basic', expectedGpu: { model: 'A6000', count: 2 } });
    em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...vault.encrypt(ws.adminPassword, credentialContext(host.id, 'winrm-password')) });
    await em.flush();
    const acts = createOnboardingActivities({ em: db.em, logger: createLogger({ level: 'silent' }), ssh, winrm, baseDomain: 'hosts.test' });
    const r = await acts.collectHostFacts(host.id);
    expect(r).toEqual({ cpuCores: 128, memoryBytes: 274_743_717_888, gpuCount: 4, gpuDifferences: ['expected 2 GPUs, found 4', 'expected A6000, found NVIDIA RTX A6000, NVIDIA RTX A6000, NVIDIA Tesla T4, Microsoft Basic Display Adapter'] });
    const facts = (await db.em.fork().findOneOrFail(HostSchema, { id: host.id })).facts!;
    expect(facts).toMatchObject({
      cpu: { model: 'AMD EPYC 7543 32-Core Processor', cores: 128, sockets: 2, threadsPerCore: 2 },
      memoryBytes: 274_743_717_888,
      disks: [
        { name: '\\\\.\\PHYSICALDRIVE0', sizeBytes: 1_920_383_410_176, model: 'SAMSUNG MZ1L21T9HCLS-00A07' },
        { name: '\\\\.\\PHYSICALDRIVE1', sizeBytes: 7_681_501_126_656, model: 'INTEL SSDPE2KE076T8' },
      ],
      gpus: EXPECTED_GPUS,
      os: { name: 'Microsoft Windows Server 2022 Datacenter', version: '10.0.20348', kernel: '20348' },
      hostname: 'WIN-GPU-07',
    });
    expect(facts.collectedAt).toMatch(/^\d{4}-/);
    // The stand-in understood the whole script (anything outside its subset fails with exit 1).
    const last = ws.commands.at(-1)!;
    expect(last.script).toContain('Win32_VideoController');
    expect(last.exitCode).toBe(0);
    expect(compareExpectedGpus(facts, { model: 'a6000' }).matches).toBe(false); // the T4 is in the box too
  });

  it('a CIM failure fails the activity retryably instead of storing half the facts', async () => {
    const host = await db.em.fork().findOneOrFail(HostSchema, { slug: 'win-facts' });
    const before = host.facts;
    ws.injectFault('Get-CimInstance', 'The WS-Management service cannot process the request. The WMI service returned an access denied error.');
    try {
      const acts = createOnboardingActivities({ em: db.em, logger: createLogger({ level: 'silent' }), ssh, winrm, baseDomain: 'hosts.test' });
      const err = (await acts.collectHostFacts(host.id).catch((e: unknown) => e)) as { type?: string; nonRetryable?: boolean };
      expect(err).toMatchObject({ type: 'RemoteCommandFailed', nonRetryable: false });
    } finally {
      ws.injectFault('Get-CimInstance', null);
    }
    expect((await db.em.fork().findOneOrFail(HostSchema, { id: host.id })).facts).toEqual(before);
  });
});

describe('Windows facts: onboarding a host with the default WinRM configuration (API → workflow → NTLM/HTTP encrypted → stand-in)', () => {
  let p: TestPlatform;
  let ws: WsManHost;
  beforeAll(async () => {
    ws = await startWsManHost({ auth: 'negotiate', https: false, hardware: gpuBox('WIN-GPU-08') });
    p = await startTestPlatform({ worker: true });
  }, 120_000);
  afterAll(async () => {
    await p?.close();
    await ws?.stop();
  });

  it('the host goes online with its CIM facts; the GPU filter finds it', async () => {
    const created = await p.api('POST', '/api/v1/hosts', {
      body: { name: 'win-gpu-08', address: '127.0.0.1', port: 3389, os: 'windows', username: ws.adminUser, password: ws.adminPassword, winrm_port: ws.port, winrm_https: false, expected_gpu: { model: 'NVIDIA', count: 3 } },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.data.id as string;
    expect(created.body.data.winrm).toMatchObject({ auth: 'negotiate', https: false, allow_unencrypted_basic: false });
    const started = await p.api('POST', `/api/v1/hosts/${id}/onboarding`, { body: {} });
    expect(started.status, JSON.stringify(started.body)).toBeLessThan(300);
    // Four adapters, three expected (the basic display adapter counts): a human confirms.
    const deadline = Date.now() + 60_000;
    let state;
    for (;;) {
      state = (await p.api('GET', `/api/v1/hosts/${id}/onboarding`)).body.data;
      if (state.steps.some((s: { step: string; status: string }) => s.step === 'confirm-facts' && s.status === 'waiting')) break;
      if (state.steps.some((s: { status: string }) => s.status === 'failed') || Date.now() > deadline) throw new Error(JSON.stringify(state));
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(state.live.gpuDifferences).toEqual(['expected 3 GPUs, found 4', 'expected NVIDIA, found NVIDIA RTX A6000, NVIDIA RTX A6000, NVIDIA Tesla T4, Microsoft Basic Display Adapter']);
    const facts = (await p.api('GET', `/api/v1/hosts/${id}`)).body.data.facts;
    expect(facts.gpus).toEqual(EXPECTED_GPUS);
    expect(facts.hostname).toBe('WIN-GPU-08');
    expect((await p.api('POST', `/api/v1/hosts/${id}/onboarding/confirm-facts`, { body: { accept: true } })).status).toBe(200);
    for (;;) {
      const h = (await p.api('GET', `/api/v1/hosts/${id}`)).body.data;
      if (h.status === 'online') break;
      if (h.status === 'failed' || Date.now() > deadline + 30_000) throw new Error(JSON.stringify((await p.api('GET', `/api/v1/hosts/${id}/onboarding`)).body.data));
      await new Promise((res) => setTimeout(res, 250));
    }
    const found = await p.api('GET', '/api/v1/hosts?gpu_model=a6000');
    expect(found.body.data.items.map((x: { id: string }) => x.id)).toEqual([id]);
    // Every request went through NTLM with sealing (the acceptor authenticated each as the admin).
    expect(ws.principals.length).toBeGreaterThan(0);
    expect(new Set(ws.principals.map((x) => x.toLowerCase().replace(/^.*\\/, '')))).toEqual(new Set([ws.adminUser.toLowerCase()]));
  }, 150_000);
});
