/**
 * Outgoing email. With SMTP_URL set, messages go to that server; without it (development), each message
 * is written as an .eml file under `<data dir>/outbox/` and logged, so nothing is lost.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from './logger.js';

export interface MailMessage {
  to: string | string[];
  subject: string;
  text: string;
  html?: string;
  /** Extra headers, e.g. an idempotency key the receiver can dedupe on. */
  headers?: Record<string, string>;
  /** A stable Message-ID (`<key@host>`), so a resent message is recognisably the same one. */
  messageId?: string;
}

export interface SentMail {
  messageId: string;
  transport: 'smtp' | 'outbox';
  /** The .eml file, for the outbox transport. */
  path?: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<SentMail>;
  close(): void;
}

export function createMailer(opts: { smtpUrl?: string; from: string; outboxDir: string; log: Logger }): Mailer {
  if (opts.smtpUrl) {
    const transport = nodemailer.createTransport(opts.smtpUrl);
    return {
      async send(m) {
        const info = await transport.sendMail({ from: opts.from, ...m });
        opts.log.info({ to: m.to, subject: m.subject, messageId: info.messageId }, 'mail sent');
        return { messageId: info.messageId, transport: 'smtp' };
      },
      close: () => transport.close(),
    };
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(m) {
      const info = await transport.sendMail({ from: opts.from, ...m });
      await mkdir(opts.outboxDir, { recursive: true });
      const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}.eml`;
      const file = path.join(opts.outboxDir, name);
      // Write then rename, so a reader never sees half a message.
      await writeFile(`${file}.tmp`, info.message as Buffer);
      await rename(`${file}.tmp`, file);
      opts.log.info({ to: m.to, subject: m.subject, path: file }, 'mail written to outbox (SMTP_URL unset)');
      return { messageId: info.messageId, transport: 'outbox', path: file };
    },
    close: () => undefined,
  };
}
