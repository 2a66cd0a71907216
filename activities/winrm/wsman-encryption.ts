/**
 * WinRM message encryption framing ([MS-WSMV] 2.2.9.1, as Windows and pywinrm write it): a
 * `multipart/encrypted` body with two parts — the protocol part naming the original content type
 * and length, then the octet-stream part holding a 4-byte little-endian signature length, the
 * signature (GSS header) and the sealed SOAP message.
 */
export const BOUNDARY = 'Encrypted Boundary';
export type EncryptionProtocol = 'application/HTTP-SPNEGO-session-encrypted' | 'application/HTTP-Kerberos-session-encrypted';

export const encryptedContentType = (protocol: EncryptionProtocol) => `multipart/encrypted;protocol="${protocol}";boundary="${BOUNDARY}"`;

export class EncryptionFramingError extends Error {
  override name = 'EncryptionFramingError';
}

export function frameEncrypted(protocol: EncryptionProtocol, header: Buffer, sealed: Buffer, originalLength: number): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([
    Buffer.from(
      `--${BOUNDARY}\r\n\tContent-Type: ${protocol}\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=${originalLength}\r\n` +
        `--${BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n`,
      'latin1',
    ),
    len,
    header,
    sealed,
    Buffer.from(`--${BOUNDARY}--\r\n`, 'latin1'),
  ]);
}

/** Splits a multipart/encrypted body; throws EncryptionFramingError when it is not one. */
export function parseEncrypted(body: Buffer, protocol: EncryptionProtocol): { header: Buffer; sealed: Buffer; originalLength: number; contentType: string } {
  const octet = Buffer.from('\tContent-Type: application/octet-stream\r\n', 'latin1');
  const at = body.indexOf(octet);
  if (at < 0) throw new EncryptionFramingError('encrypted body has no application/octet-stream part');
  const head = body.subarray(0, at).toString('latin1');
  if (!head.startsWith(`--${BOUNDARY}\r\n`) || !head.includes(`Content-Type: ${protocol}\r\n`)) {
    throw new EncryptionFramingError(`encrypted body is not ${protocol}`);
  }
  const orig = /OriginalContent:\s*type=([^;\r\n]+(?:;charset=[\w-]+)?);Length=(\d+)/i.exec(head);
  if (!orig) throw new EncryptionFramingError('encrypted body has no OriginalContent length');
  const start = at + octet.length;
  const end = body.lastIndexOf(Buffer.from(`--${BOUNDARY}--`, 'latin1'));
  if (end < start + 4) throw new EncryptionFramingError('encrypted body is truncated');
  const hlen = body.readUInt32LE(start);
  if (start + 4 + hlen > end) throw new EncryptionFramingError('encrypted body: signature length runs past the part');
  return {
    header: body.subarray(start + 4, start + 4 + hlen),
    sealed: body.subarray(start + 4 + hlen, end),
    originalLength: Number(orig[2]),
    contentType: orig[1]!,
  };
}
