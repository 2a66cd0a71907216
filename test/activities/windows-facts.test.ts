import { describe, expect, it } from 'vitest';
import { WINDOWS_FACTS_SCRIPT, compareExpectedGpus, parseWindowsFacts } from '../../activities/remote/facts.js';
import { encodePowerShell } from '../../activities/winrm/winrm-executor.js';

// What `ConvertTo-Json -Compress -Depth 4` prints for WINDOWS_FACTS_SCRIPT on a Windows Server 2022 GPU box
// (hand-written in that exact shape: the WS-Management stand-in does not implement CIM, so the Windows side of
// fact collection is exercised here, at the parser, and not end to end).
const SAMPLE =
  '{"osVersion":"10.0.20348","gpus":[{"driver":"31.0.15.5186","memoryMiB":4095,"model":"NVIDIA RTX A6000"},{"driver":"31.0.15.5186","memoryMiB":4095,"model":"NVIDIA RTX A6000"}],' +
  '"hostname":"WIN-GPU-07","disks":[{"model":"SAMSUNG MZ1L21T9HCLS-00A07","sizeBytes":1920383410176,"name":"\\\\\\\\.\\\\PHYSICALDRIVE0"}],' +
  '"cores":64,"osName":"Microsoft Windows Server 2022 Datacenter","memoryBytes":274743717888,"cpuModel":"AMD EPYC 7543 32-Core Processor             "}';

describe('Windows facts (CIM over WinRM)', () => {
  it('parses the script output into host facts', () => {
    const f = parseWindowsFacts(`#< CLIXML\r\n${SAMPLE}\r\n`);
    expect(f).toEqual({
      cpu: { model: 'AMD EPYC 7543 32-Core Processor', cores: 64 },
      memoryBytes: 274743717888,
      disks: [{ name: '\\\\.\\PHYSICALDRIVE0', sizeBytes: 1920383410176, model: 'SAMSUNG MZ1L21T9HCLS-00A07' }],
      gpus: [
        { index: 0, model: 'NVIDIA RTX A6000', memoryMiB: 4095, driver: '31.0.15.5186' },
        { index: 1, model: 'NVIDIA RTX A6000', memoryMiB: 4095, driver: '31.0.15.5186' },
      ],
      os: { name: 'Microsoft Windows Server 2022 Datacenter', version: '10.0.20348', kernel: '10.0.20348' },
      hostname: 'WIN-GPU-07',
    });
    expect(compareExpectedGpus(f, { model: 'a6000', count: 2 }).matches).toBe(true);
    expect(compareExpectedGpus(f, { model: 'A100', count: 2 }).matches).toBe(false);
  });

  it('the script is a constant that encodes for -EncodedCommand', () => {
    expect(WINDOWS_FACTS_SCRIPT).toMatch(/Get-CimInstance Win32_Processor/);
    expect(Buffer.from(encodePowerShell(WINDOWS_FACTS_SCRIPT), 'base64').toString('utf16le')).toContain('ConvertTo-Json');
  });
});
