#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Rewrite README.md's "Signal validity" tables from bench_onset's output.

    ./build/tests/bench/bench_onset > /tmp/onset.txt
    python3 tests/bench/readme_tables.py /tmp/onset.txt     # from the top of the tree

The onset table takes each source's hodges and offline rows, the offset table
the hodges and offline rows of "offset accuracy", the per-rate table the rows of
the `rates` section, the real-recording table those of the `real` section, the
rests table those of the `rests` section, the toe table those of the `toes`
section and the level table those of the `levels` section (when the run had them); everything
else in the README is left alone, so `git diff README.md` shows exactly which figures moved.  The
tables are copied, never typed: a figure in them is what the benchmark printed.
"""
import os
import re
import sys

# bench_onset's source names and the README's words for them
LABELS = {
    'synth-real': 'realistic synth (ECG 100 µV, default `ecg = subtract`)',
    's-real/off': 'realistic synth, `ecg = off`',
    'synth-plain': 'plain synth',
    'ext-gauss': 'external, Gaussian noise',
    'ext-laplace': 'external, Laplacian noise',
    'ext2-gauss': 'external set 2, Gaussian noise',
    'ext2-laplace': 'external set 2, Laplacian noise',
    'ext2x5-gauss': 'external set 2, 5 to a stream, Gaussian noise',
    'ext2x5-lapl': 'external set 2, 5 to a stream, Laplacian noise',
}
HEAD_ON = (r'\| source \| SNR dB \| detector \| median \\\|e\\\| ms \| mean e ms \| p90 \\\|e\\\| ms \| '
           r'median \\\|e\\\| vs alt ms \| missed \| false onsets / muscle-min \| lag p90 ms \|')
HEAD_OFF = (r'\| source \| SNR dB \| detector \| median \\\|e\\\| ms \| mean e ms \| p90 \\\|e\\\| ms \| '
            r'offsets scored \|')


HEAD_RATE = (r'\| source \| rate Hz \| SNR dB \| median \\\|e\\\| ms \| mean e ms \| p90 \\\|e\\\| ms \| '
             r'missed \| false onsets / muscle-min \| lag p90 ms \|')
RATE_LABELS = {'s-plain': 'plain synth', 's-real': 'realistic synth',
               'ext1-g': 'external set 1, Gaussian', 'ext1-l': 'external set 1, Laplacian'}

HEAD_RESTS = r'\| rests \| `mains` \| 10 dB \| 20 dB \| 40 dB \|'
HEAD_SHORTS = (r'\| length s \| start-up gate \| missed of 42, 10 / 20 / 40 dB \| median \\\|e\\\| ms \| '
               r'mean e ms \|')
HEAD_LEVELS = (r'\| SNR \| burst SNR dB \| bursts \| missed \| median \\\|e\\\| ms \| mean e ms \| '
               r'p90 \\\|e\\\| ms \|')
HEAD_TOES = r'\| SNR \| toe ms \| bursts \| median \\\|e\\\| ms \| mean e ms \| p90 \\\|e\\\| ms \| mean e - toe ms \|'

HEAD_REAL = (r'\| detector \| contractions found \| false onsets / min of rest \| median \\\|d\\\| ms \| '
             r'mean d ms \| p90 \\\|d\\\| ms \|')


def real_rows(bench):
    """The README rows of the real-recording table (`bench_onset real`): detector, found, FA/min, d."""
    out, on = [], False
    for line in bench.splitlines():
        if line.startswith('recording '):
            on = True
            continue
        p = line.split()
        if not on or len(p) < 7 or '/' not in p[-5]:
            on = on and len(p) >= 7
            continue
        det = ' '.join(p[1:-5])
        if det.startswith('hodges ecg='):
            det = 'hodges `ecg = %s`' % det.split('=', 1)[1]
        elif det.endswith(' cold startup_s=0'):
            det = '%s, started cold, `startup_s = 0`' % det.split()[0]
        elif det.endswith(' cold'):
            det = '%s, started cold' % det.split()[0]
        out.append('| ' + ' | '.join([det] + [c.replace('+-', '-') for c in p[-5:]]) + ' |')
    return out


def rate_rows(bench):
    """The README rows of the per-rate table (`bench_onset rates`); the synths' 2 kHz rows left out (the big table has them)."""
    out = []
    for line in bench.splitlines():
        p = line.split()
        if len(p) != 10 or '@' not in p[0] or p[2] != 'hodges':
            continue
        src, rate = p[0].split('@')
        if src not in RATE_LABELS or (rate == '2000' and src.startswith('s-')):
            continue
        cells = [RATE_LABELS[src], rate, p[1]] + [c.replace('+-', '-') for c in p[3:6] + p[7:]]
        out.append('| ' + ' | '.join(cells) + ' |')
    return out


def keyed_rows(bench, pattern, key):
    """Rows of a section whose hodges rows are named `<range>/<setting>` (pattern's two groups),
    in bench order: ((range, setting) as key(match) says, {SNR: the row's words})."""
    cells, order = {}, []
    for line in bench.splitlines():
        p = line.split()
        m = re.match(pattern, p[0]) if len(p) == 10 else None
        if not m or p[2] != 'hodges':
            continue
        k = key(m)
        if k not in cells:
            cells[k], order = {}, order + [k]
        cells[k][p[1]] = p
    return [(k, cells[k]) for k in order]


def rests_rows(bench):
    """The README rows of the rests table (`bench_onset rests`): misses per rest range and mains."""
    rows = keyed_rows(bench, r'^([\d.]+-[\d.]+)/(auto|off)$',
                      lambda m: (m.group(1) + ' s', 'auto (default)' if m.group(2) == 'auto' else 'off'))
    return ['| %s | %s | %s |' % (k[0], k[1], ' | '.join(c[snr][7].split('/')[0] if snr in c else '-'
                                                         for snr in ('10', '20', '40')))
            for k, c in rows]


def shorts_rows(bench):
    """The README rows of the short-contractions table (`bench_onset shorts`): per length and
    setting, the misses and onset errors at 10 / 20 / 40 dB."""
    rows = keyed_rows(bench, r'^([\d.]+-[\d.]+|whole)/(dflt|start0)$',
                      lambda m: (m.group(1), 'default' if m.group(2) == 'dflt' else '`startup_s = 0`'))
    return ['| %s | %s | %s |' % (k[0], k[1], ' | '.join(' / '.join(c[snr][i].split('/')[0] for snr in c)
                                                         for i in (7, 3, 4)))
            for k, c in rows]


def binned_rows(bench, title, ncols):
    """The README rows of a binned section (`toes`, `levels`): one row per SNR, each of the ncols
    columns after it the bins' cells joined by ' / '."""
    cols, order, on = {}, [], False
    for line in bench.splitlines():
        if line.startswith(title):
            on = True
            continue
        p = line.split()
        if not on or len(p) < ncols + 1 or p[0] == 'SNR':
            continue
        if not re.match(r'^\d+$', p[0]):
            break
        if p[1] in ('>=', '<'):  # the open bins, ">= 40" and "< 0", are two words
            p = [p[0], p[1] + ' ' + p[2]] + p[3:]
        if p[0] not in cols:
            cols[p[0]], order = [[] for _ in range(ncols)], order + [p[0]]
        for i, c in enumerate(p[1:ncols + 1]):
            cols[p[0]][i].append(c)
    return ['| %s | %s |' % (snr, ' | '.join(' / '.join(c) for c in cols[snr])) for snr in order]


def rows(bench):
    """The README rows of the onset and the offset table, in bench order."""
    on, off, in_off = [], [], False
    for line in bench.splitlines():
        if line.startswith('offset accuracy'):
            in_off = True
            continue
        p = line.split()
        if len(p) < 3 or p[0] not in LABELS or p[2] not in ('hodges', 'offline'):
            continue
        cells = [LABELS[p[0]]] + [c.replace('+-', '-') for c in p[1:]]
        if (len(p) == 7) == in_off and len(p) in (7, 10):
            (off if in_off else on).append('| ' + ' | '.join(cells) + ' |')
    return on, off


def replace_body(text, head, body):
    """The table under `head` (its header and rule kept) with `body` as rows."""
    m = re.search('(' + head + r'\n\|[-|]+\|\n)((?:\|.*\|\n)+)', text)
    if not m:
        sys.exit('readme_tables: no table headed %s in README.md' % head.replace('\\', ''))
    return text[:m.start(2)] + '\n'.join(body) + '\n' + text[m.end(2):]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    bench = open(sys.argv[1], encoding='utf-8').read()
    on, off = rows(bench)
    rate = rate_rows(bench)
    real = real_rows(bench)
    rests = rests_rows(bench)
    shorts = shorts_rows(bench)
    toes = binned_rows(bench, 'realistic synth onsets by toe', 6)
    levels = binned_rows(bench, "realistic synth onsets by the burst's own SNR", 6)
    if not on or not off:
        sys.exit('readme_tables: %s holds no bench_onset table (onset rows %d, offset rows %d)'
                 % (sys.argv[1], len(on), len(off)))
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'README.md')
    text = open(readme, encoding='utf-8').read()
    text = replace_body(replace_body(text, HEAD_ON, on), HEAD_OFF, off)
    if rate:  # only when the run had the `rates` section
        text = replace_body(text, HEAD_RATE, rate)
    if real:  # ... and the `real` section
        text = replace_body(text, HEAD_REAL, real)
    if rests:  # ... and the `rests` section
        text = replace_body(text, HEAD_RESTS, rests)
    if shorts:  # ... and the `shorts` section
        text = replace_body(text, HEAD_SHORTS, shorts)
    if toes:  # ... and the `toes` section
        text = replace_body(text, HEAD_TOES, toes)
    if levels:  # ... and the `levels` section
        text = replace_body(text, HEAD_LEVELS, levels)
    open(readme, 'w', encoding='utf-8').write(text)
    print('README.md: %d onset rows, %d offset rows, %d rate rows, %d real-recording rows, %d rest rows, '
          '%d short-contraction rows, %d toe rows, %d level rows'
          % (len(on), len(off), len(rate), len(real), len(rests), len(shorts), len(toes), len(levels)))


if __name__ == '__main__':
    main()
