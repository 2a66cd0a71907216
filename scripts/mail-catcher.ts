// A local inbox for trying the platform without a mail server: a real SMTP server (smtp-server)
// on loopback that prints every mail it receives (subject, recipients, text) to this terminal.
// Links in registration and activation mails carry single-use tokens: this terminal is the inbox.
//   npx tsx scripts/mail-catcher.ts [port]        (default 2525)
//   SMTP_URL=smtp://127.0.0.1:2525 npm start
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

const port = Number(process.argv[2] ?? 2525);
const server = new SMTPServer({
  authOptional: true,
  disableReverseLookup: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onData(stream, session, callback) {
    simpleParser(stream).then(
      (mail) => {
        const to = session.envelope.rcptTo.map((r) => r.address).join(', ');
        process.stdout.write(`\n=== ${new Date().toISOString()} to ${to}\nSubject: ${mail.subject ?? ''}\n\n${mail.text ?? ''}\n`);
        callback();
      },
      (err: Error) => callback(err),
    );
  },
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`mail catcher listening on smtp://127.0.0.1:${port}\n`));
process.on('SIGINT', () => server.close(() => process.exit(0)));
