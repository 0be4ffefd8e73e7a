import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailer } from '../lib/mailer.js';
import { startSmtpCapture, type SmtpCapture } from './helpers/smtp.js';
import { testLog } from './helpers/harness.js';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';

describe('mailer', () => {
  let smtp: SmtpCapture;
  beforeAll(async () => {
    smtp = await startSmtpCapture();
  });
  afterAll(() => smtp.close());

  it('sends through SMTP_URL when set', async () => {
    const outboxDir = await mkdtemp(path.join(os.tmpdir(), 'outbox-'));
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'opsflow <ops@example.com>', outboxDir, log: testLog() });
    const sent = await mailer.send({
      to: 'owner@example.com',
      subject: 'Backup ok',
      text: 'all good',
      html: '<p>all good</p>',
    });
    mailer.close();
    expect(sent.transport).toBe('smtp');
    const [mail] = await smtp.waitFor(1);
    expect(mail?.subject).toBe('Backup ok');
    expect(mail?.text?.trim()).toBe('all good');
    expect(mail?.html).toContain('<p>all good</p>');
    expect(await readdir(outboxDir)).toEqual([]);
  });

  it('writes an .eml file to the outbox without SMTP_URL', async () => {
    const outboxDir = await mkdtemp(path.join(os.tmpdir(), 'outbox-'));
    const mailer = createMailer({ from: 'opsflow <ops@example.com>', outboxDir, log: testLog() });
    const sent = await mailer.send({ to: 'owner@example.com', subject: 'Reminder', text: 'expires soon' });
    expect(sent.transport).toBe('outbox');
    const files = await readdir(outboxDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.eml$/);
    const eml = await readFile(path.join(outboxDir, files[0]!), 'utf8');
    expect(eml).toContain('Subject: Reminder');
    expect(eml).toContain('To: owner@example.com');
    expect(eml).toContain('expires soon');
  });

  it('fails loudly when the SMTP server is unreachable', async () => {
    const outboxDir = await mkdtemp(path.join(os.tmpdir(), 'outbox-'));
    const mailer = createMailer({ smtpUrl: 'smtp://127.0.0.1:1', from: 'a@b.c', outboxDir, log: testLog() });
    await expect(mailer.send({ to: 'x@example.com', subject: 's', text: 't' })).rejects.toThrow();
    mailer.close();
  });
});
