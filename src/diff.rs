//! Line diffs: Myers' O(ND) algorithm in linear space (middle snake, divide and conquer) and
//! unified-style output (`@@ -a,n +b,m @@` hunks, `-`/`+`/space prefixed lines).
//!
//! ```
//! use regclient::diff::{unified, DiffOpts};
//! let a = ["x", "y", "z"];
//! let b = ["x", "Y", "z"];
//! let out = unified(&a, &b, &DiffOpts::default());
//! assert_eq!(out, vec!["@@ -1,3 +1,3 @@", " x", "-y", "+Y", " z"]);
//! ```

/// One step of an edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// `a[i] == b[j]`, kept.
    Keep(usize, usize),
    /// `a[i]` removed.
    Delete(usize),
    /// `b[j]` added.
    Insert(usize),
}

/// Output settings.
#[derive(Debug, Clone, Copy)]
pub struct DiffOpts {
    /// Unchanged lines shown around each change.
    pub context: usize,
    /// Show every line in one hunk (`--context-full`).
    pub full: bool,
}

impl Default for DiffOpts {
    fn default() -> Self {
        DiffOpts {
            context: 3,
            full: false,
        }
    }
}

/// A shortest edit script turning `a` into `b`. Within each run of changes, deletions come
/// before insertions.
pub fn edits<T: PartialEq>(a: &[T], b: &[T]) -> Vec<Edit> {
    let mut raw = Vec::with_capacity(a.len().max(b.len()));
    let mut vf = Vec::new();
    let mut vb = Vec::new();
    diff_rec(a, b, 0, a.len(), 0, b.len(), &mut raw, &mut vf, &mut vb);
    // Reorder each change run: deletions first, then insertions.
    let mut out = Vec::with_capacity(raw.len());
    let mut ins = Vec::new();
    let mut del = Vec::new();
    for e in raw {
        match e {
            Edit::Keep(..) => {
                out.append(&mut del);
                out.append(&mut ins);
                out.push(e);
            }
            Edit::Delete(_) => del.push(e),
            Edit::Insert(_) => ins.push(e),
        }
    }
    out.append(&mut del);
    out.append(&mut ins);
    out
}

#[allow(clippy::too_many_arguments)]
fn diff_rec<T: PartialEq>(
    a: &[T],
    b: &[T],
    mut alo: usize,
    mut ahi: usize,
    mut blo: usize,
    mut bhi: usize,
    out: &mut Vec<Edit>,
    vf: &mut Vec<isize>,
    vb: &mut Vec<isize>,
) {
    // Common prefix.
    while alo < ahi && blo < bhi && a[alo] == b[blo] {
        out.push(Edit::Keep(alo, blo));
        alo += 1;
        blo += 1;
    }
    // Common suffix (emitted after the middle).
    let mut suffix = 0;
    while alo < ahi && blo < bhi && a[ahi - 1] == b[bhi - 1] {
        ahi -= 1;
        bhi -= 1;
        suffix += 1;
    }
    if alo == ahi {
        out.extend((blo..bhi).map(Edit::Insert));
    } else if blo == bhi {
        out.extend((alo..ahi).map(Edit::Delete));
    } else {
        let (x, y, u, v) = middle_snake(&a[alo..ahi], &b[blo..bhi], vf, vb);
        diff_rec(a, b, alo, alo + x, blo, blo + y, out, vf, vb);
        for i in 0..(u - x) {
            out.push(Edit::Keep(alo + x + i, blo + y + i));
        }
        diff_rec(a, b, alo + u, ahi, blo + v, bhi, out, vf, vb);
    }
    for i in 0..suffix {
        out.push(Edit::Keep(ahi + i, bhi + i));
    }
}

/// Myers' middle snake of a non-trivial problem (both sides non-empty, first and last
/// elements differing): returns `(x, y, u, v)` with `a[x..u] == b[y..v]` on an optimal path.
fn middle_snake<T: PartialEq>(
    a: &[T],
    b: &[T],
    vf: &mut Vec<isize>,
    vb: &mut Vec<isize>,
) -> (usize, usize, usize, usize) {
    let n = a.len() as isize;
    let m = b.len() as isize;
    let delta = n - m;
    let odd = delta & 1 == 1;
    let max = (n + m + 1) / 2 + 1;
    let off = max + 1;
    let size = (2 * off + 1) as usize;
    vf.clear();
    vf.resize(size, 0);
    vb.clear();
    vb.resize(size, 0);
    let idx = |k: isize| (k + off) as usize;
    for d in 0..=max {
        // Forward.
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && vf[idx(k - 1)] < vf[idx(k + 1)]) {
                vf[idx(k + 1)]
            } else {
                vf[idx(k - 1)] + 1
            };
            let mut y = x - k;
            let (x0, y0) = (x, y);
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            vf[idx(k)] = x;
            // Backward diagonal kb = delta - k in reversed coordinates.
            let kb = delta - k;
            if odd && kb > -d && kb < d && x + vb[idx(kb)] >= n {
                return (x0 as usize, y0 as usize, x as usize, y as usize);
            }
            k += 2;
        }
        // Backward (coordinates measured from the ends).
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && vb[idx(k - 1)] < vb[idx(k + 1)]) {
                vb[idx(k + 1)]
            } else {
                vb[idx(k - 1)] + 1
            };
            let mut y = x - k;
            let (x0, y0) = (x, y);
            while x < n && y < m && a[(n - x - 1) as usize] == b[(m - y - 1) as usize] {
                x += 1;
                y += 1;
            }
            vb[idx(k)] = x;
            let kf = delta - k;
            if !odd && kf >= -d && kf <= d && x + vf[idx(kf)] >= n {
                return (
                    (n - x) as usize,
                    (m - y) as usize,
                    (n - x0) as usize,
                    (m - y0) as usize,
                );
            }
            k += 2;
        }
    }
    unreachable!("Myers: no middle snake within (n+m)/2 steps")
}

/// Unified-style diff lines of `a` and `b` (no `---`/`+++` header); empty when equal.
pub fn unified<S: AsRef<str>>(a: &[S], b: &[S], opts: &DiffOpts) -> Vec<String> {
    let av: Vec<&str> = a.iter().map(|s| s.as_ref()).collect();
    let bv: Vec<&str> = b.iter().map(|s| s.as_ref()).collect();
    let es = edits(&av, &bv);
    if !es.iter().any(|e| !matches!(e, Edit::Keep(..))) {
        return Vec::new();
    }
    // Hunks as ranges of the edit script.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    if opts.full {
        ranges.push((0, es.len()));
    } else {
        let ctx = opts.context;
        let changes: Vec<usize> = es
            .iter()
            .enumerate()
            .filter(|(_, e)| !matches!(e, Edit::Keep(..)))
            .map(|(i, _)| i)
            .collect();
        for &c in &changes {
            let start = c.saturating_sub(ctx);
            let end = (c + 1 + ctx).min(es.len());
            match ranges.last_mut() {
                Some(last) if start <= last.1 => last.1 = end,
                _ => ranges.push((start, end)),
            }
        }
    }
    let mut out = Vec::new();
    for (s, e) in ranges {
        // Positions before the hunk.
        let (mut ai, mut bi) = position(&es, s, av.len(), bv.len());
        let (mut acount, mut bcount) = (0usize, 0usize);
        let mut lines = Vec::new();
        for ed in &es[s..e] {
            match *ed {
                Edit::Keep(i, _) => {
                    lines.push(format!(" {}", av[i]));
                    acount += 1;
                    bcount += 1;
                }
                Edit::Delete(i) => {
                    lines.push(format!("-{}", av[i]));
                    acount += 1;
                }
                Edit::Insert(j) => {
                    lines.push(format!("+{}", bv[j]));
                    bcount += 1;
                }
            }
        }
        // GNU convention: an empty side names the line before it.
        if acount > 0 {
            ai += 1;
        }
        if bcount > 0 {
            bi += 1;
        }
        out.push(format!("@@ -{ai},{acount} +{bi},{bcount} @@"));
        out.append(&mut lines);
    }
    out
}

/// Lines of `a` and `b` consumed before edit `s`.
fn position(es: &[Edit], s: usize, alen: usize, blen: usize) -> (usize, usize) {
    if let Some(e) = es.get(s) {
        match *e {
            Edit::Keep(i, j) => return (i, j),
            Edit::Delete(i) => {
                let j = es[..s]
                    .iter()
                    .rev()
                    .find_map(|e| match *e {
                        Edit::Keep(_, j) | Edit::Insert(j) => Some(j + 1),
                        Edit::Delete(_) => None,
                    })
                    .unwrap_or(0);
                return (i, j);
            }
            Edit::Insert(j) => {
                let i = es[..s]
                    .iter()
                    .rev()
                    .find_map(|e| match *e {
                        Edit::Keep(i, _) | Edit::Delete(i) => Some(i + 1),
                        Edit::Insert(_) => None,
                    })
                    .unwrap_or(0);
                return (i, j);
            }
        }
    }
    (alen, blen)
}

/// Splits text into lines for diffing (a final newline does not add an empty line).
pub fn lines(s: &str) -> Vec<&str> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    if s.is_empty() {
        return Vec::new();
    }
    s.split('\n').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Length of the longest common subsequence, by dynamic programming.
    fn lcs(a: &[u8], b: &[u8]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                t[i][j] = if a[i] == b[j] {
                    t[i + 1][j + 1] + 1
                } else {
                    t[i + 1][j].max(t[i][j + 1])
                };
            }
        }
        t[0][0]
    }

    /// Applies the script and checks it is valid and minimal.
    fn check(a: &[u8], b: &[u8]) {
        let es = edits(a, b);
        let (mut ai, mut bi) = (0, 0);
        let mut built = Vec::new();
        let mut keeps = 0;
        for e in &es {
            match *e {
                Edit::Keep(i, j) => {
                    assert_eq!((i, j), (ai, bi), "{a:?} {b:?} {es:?}");
                    assert_eq!(a[i], b[j]);
                    built.push(a[i]);
                    ai += 1;
                    bi += 1;
                    keeps += 1;
                }
                Edit::Delete(i) => {
                    assert_eq!(i, ai, "{a:?} {b:?} {es:?}");
                    ai += 1;
                }
                Edit::Insert(j) => {
                    assert_eq!(j, bi, "{a:?} {b:?} {es:?}");
                    built.push(b[j]);
                    bi += 1;
                }
            }
        }
        assert_eq!((ai, bi), (a.len(), b.len()));
        assert_eq!(built, b);
        assert_eq!(keeps, lcs(a, b), "not minimal: {a:?} {b:?} {es:?}");
    }

    #[test]
    fn edits_are_valid_and_minimal() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"abc", b""),
            (b"", b"abc"),
            (b"abc", b"abc"),
            (b"abcabba", b"cbabac"),
            (b"ab", b"ba"),
            (b"a", b"b"),
            (b"xaaaay", b"aaaa"),
            (b"abcdefg", b"axcyegz"),
        ];
        for (a, b) in cases {
            check(a, b);
            check(b, a);
        }
        // Pseudo-random inputs over a small alphabet.
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..400 {
            let la = (next() % 14) as usize;
            let lb = (next() % 14) as usize;
            let a: Vec<u8> = (0..la).map(|_| b'a' + (next() % 3) as u8).collect();
            let b: Vec<u8> = (0..lb).map(|_| b'a' + (next() % 3) as u8).collect();
            check(&a, &b);
        }
    }

    #[test]
    fn deletions_before_insertions() {
        let es = edits(&["a", "b", "c"], &["a", "x", "c"]);
        assert_eq!(
            es,
            vec![
                Edit::Keep(0, 0),
                Edit::Delete(1),
                Edit::Insert(1),
                Edit::Keep(2, 2)
            ]
        );
    }

    #[test]
    fn unified_hunks_and_context() {
        let a: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
        let mut b = a.clone();
        b[1] = "two".into();
        b.remove(15); // "16"
        let out = unified(&a, &b, &DiffOpts::default());
        assert_eq!(
            out,
            vec![
                "@@ -1,5 +1,5 @@",
                " 1",
                "-2",
                "+two",
                " 3",
                " 4",
                " 5",
                "@@ -13,7 +13,6 @@",
                " 13",
                " 14",
                " 15",
                "-16",
                " 17",
                " 18",
                " 19",
            ]
        );
        // Wider context merges the hunks.
        let out = unified(
            &a,
            &b,
            &DiffOpts {
                context: 7,
                full: false,
            },
        );
        assert_eq!(out.iter().filter(|l| l.starts_with("@@")).count(), 1);
        assert_eq!(out[0], "@@ -1,20 +1,19 @@");
        // No context.
        let out = unified(
            &a,
            &b,
            &DiffOpts {
                context: 0,
                full: false,
            },
        );
        assert_eq!(
            out,
            vec!["@@ -2,1 +2,1 @@", "-2", "+two", "@@ -16,1 +15,0 @@", "-16"]
        );
        // Full shows every line.
        let out = unified(
            &a,
            &b,
            &DiffOpts {
                context: 0,
                full: true,
            },
        );
        assert_eq!(out.len(), 1 + 21);
        assert_eq!(out[0], "@@ -1,20 +1,19 @@");
    }

    #[test]
    fn unified_edges() {
        let e: [&str; 0] = [];
        assert!(unified(&["a"], &["a"], &DiffOpts::default()).is_empty());
        assert_eq!(
            unified(&e, &["a", "b"], &DiffOpts::default()),
            vec!["@@ -0,0 +1,2 @@", "+a", "+b"]
        );
        assert_eq!(
            unified(&["a", "b"], &e, &DiffOpts::default()),
            vec!["@@ -1,2 +0,0 @@", "-a", "-b"]
        );
        assert_eq!(
            unified(&["a", "b"], &["a", "b", "c"], &DiffOpts::default()),
            vec!["@@ -1,2 +1,3 @@", " a", " b", "+c"]
        );
        assert_eq!(lines("a\nb\n"), vec!["a", "b"]);
        assert!(lines("").is_empty());
    }
}
