#!/usr/bin/env python3
"""Writes this directory's fixture of the old platform: its MySQL tables as a
mysqldump file (dump.sql) and as CSV exports (csv/), its samples directory
(samples/{sha}.{extension}) and its correct outputs (results/{correct}{ext}).
The correct outputs are what ccx.pl writes, so the imported catalogue passes.
Run it from this directory; the files it writes are committed."""
import csv, hashlib, os, shutil

def sha256(b): return hashlib.sha256(b).hexdigest()

shutil.rmtree('samples', ignore_errors=True); shutil.rmtree('results', ignore_errors=True)
shutil.rmtree('csv', ignore_errors=True)
for d in ('samples', 'results', 'csv'): os.makedirs(d)

exts = ['ts', 'mp4', 'mkv', 'wtv']
samples = []  # id, sha, extension, original_name
for i in range(1, 11):
    content = f'clip {i} first line\nclip {i} second line\n'.encode()
    sha, ext = sha256(content), exts[i % 4]
    with open(f'samples/{sha}.{ext}', 'wb') as f: f.write(content)
    samples.append((i, sha, ext, f'clip-{i}.{ext}', content))
# A sample row whose file is gone.
samples.append((11, 'f' * 64, 'ts', 'lost.ts', None))

categories = [(1, 'Broadcast', 'Broadcast captions'), (2, 'DVB', 'DVB subtitles'),
              (3, 'Teletext', "Teletext, \"page 888\"; it's old"), (4, 'CEA-708', None)]

tests, links, outputs, variants = [], [], [], []
next_output = [1]

def add_output(test, expected_filename, ext, content, by_results=False, ignore=0):
    oid = next_output[0]; next_output[0] += 1
    digest = sha256(content)
    if by_results:
        correct = hashlib.md5(content).hexdigest()  # a name, not a SHA-256
        with open(f'results/{correct}{ext}', 'wb') as f: f.write(content)
    else:
        correct = digest
    outputs.append((oid, test, correct, ext, expected_filename, ignore))
    return oid

kinds = [(i, o) for i in ('file', 'stdin', 'udp')
         for o in ('file', 'stdout', 'report', 'null', 'cea708', 'multiprogram', 'tcp')
         if not (i == 'udp' and o == 'tcp')]
tid = 0
for n, (inp, out) in enumerate(kinds + [('file', 'file')] * 8):
    tid += 1
    sid, sha, ext, name, content = samples[n % 10]
    upper = content.upper()
    command, rc, active = '-latin1', 0, 1
    if out == 'cea708': command = '-708'
    if tid in (22, 23): command, rc = '-fail -latin1', 10
    if tid == 24: active = 0
    tests.append((tid, sid, command, inp, out, rc, active))
    links.append((tid, 1 + tid % 4))
    if tid % 3 == 0: links.append((tid, 1 + (tid + 1) % 4))
    if out == 'file':
        oid = add_output(tid, '', '.srt', upper, by_results=tid % 2 == 0)
        if tid in (21, 25):  # accepted variants: one by hash, one by file
            variants.append((oid, sha256(b'an older build\n')))
            other = b'ANOTHER ACCEPTED OUTPUT\n'
            md5 = hashlib.md5(other).hexdigest()
            with open(f'results/{md5}.srt', 'wb') as f: f.write(other)
            variants.append((oid, md5))
        if tid == 26:  # an ignored output that would never match
            add_output(tid, '_debug', '.log', b'whatever\n', ignore=1)
    elif out in ('stdout', 'report', 'tcp'):
        text = b'ccx report: 2 lines\n' if out == 'report' else upper
        add_output(tid, f'_{out}', '.txt', text, by_results=tid % 2 == 0)
    elif out == 'null':
        add_output(tid, '', '.srt', b'kept by the old platform, compared by nobody\n')
    else:
        lines = upper.decode().splitlines()
        prefix = '_' if out == 'cea708' else '_p'
        for k, line in enumerate(lines, 1):
            add_output(tid, f'{prefix}{k}', '.srt', (line + '\n').encode(), by_results=k == 2)

# What cannot be mapped: an unknown output type, a lost sample, a correct
# output that is neither a SHA-256 nor in results/, UDP in with TCP out.
tid += 1; tests.append((tid, 1, '-latin1', 'file', 'xml', 0, 1))
tid += 1; tests.append((tid, 11, '-latin1', 'file', 'file', 0, 1))
add_output(tid, '', '.srt', b'x')
tid += 1; tests.append((tid, 2, '-latin1', 'file', 'file', 0, 1))
outputs.append((next_output[0], tid, 'not-a-hash', '.srt', '', 0)); next_output[0] += 1
tid += 1; tests.append((tid, 3, '-latin1', 'udp', 'tcp', 0, 1))
add_output(tid, '_tcp', '.txt', b'x')

tables = {
    'sample': (['id', 'sha', 'extension', 'original_name'], [s[:4] for s in samples]),
    'category': (['id', 'name', 'description'], categories),
    'regression_test': (['id', 'sample_id', 'command', 'input_type', 'output_type', 'expected_rc', 'active'], tests),
    'regression_test_category': (['regression_id', 'category_id'], links),
    'regression_test_output': (['id', 'regression_id', 'correct', 'correct_extension', 'expected_filename', 'ignore'], outputs),
    'regression_test_output_files': (['id', 'file_hashes', 'regression_test_output_id'],
                                     [(k, h, o) for k, (o, h) in enumerate(variants, 1)]),
}

def sql(v):
    if v is None: return 'NULL'
    if isinstance(v, int): return str(v)
    return "'" + v.replace('\\', '\\\\').replace("'", "\\'") + "'"

with open('dump.sql', 'w') as f:
    f.write('-- MySQL dump 10.13  Distrib 5.7.42, for Linux (x86_64)\n--\n-- Host: localhost    Database: sample_platform\n')
    f.write('/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8 */;\n\n')
    for name, (cols, rows) in tables.items():
        f.write(f'--\n-- Table structure for table `{name}`\n--\n\nDROP TABLE IF EXISTS `{name}`;\n')
        f.write(f'CREATE TABLE `{name}` (\n')
        f.write(',\n'.join(f'  `{c}` {"int(11)" if c.endswith("id") or c in ("expected_rc", "active", "ignore") else "text"} DEFAULT NULL' for c in cols))
        f.write(f',\n  PRIMARY KEY (`{cols[0]}`),\n  KEY `ix_{name}` (`{cols[0]}`,`{cols[1]}`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8;\n\n')
        f.write(f'LOCK TABLES `{name}` WRITE;\n/*!40000 ALTER TABLE `{name}` DISABLE KEYS */;\n')
        if rows:
            f.write(f'INSERT INTO `{name}` VALUES ' + ','.join('(' + ','.join(sql(v) for v in r) + ')' for r in rows) + ';\n')
        f.write(f'/*!40000 ALTER TABLE `{name}` ENABLE KEYS */;\nUNLOCK TABLES;\n\n')
    for name, (cols, rows) in tables.items():
        with open(f'csv/{name}.csv', 'w', newline='') as c:
            w = csv.writer(c)
            w.writerow(cols)
            for r in rows: w.writerow(['\\N' if v is None else v for v in r])
print(f'{len(tests)} tests, {len(outputs)} outputs, {len(samples)} samples')
