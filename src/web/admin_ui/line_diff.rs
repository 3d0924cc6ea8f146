//! A side-by-side line diff of two texts (longest common subsequence of lines), for
//! comparing versions. Pure; small inputs (policy documents are at most a few
//! hundred lines), so the quadratic table is fine.

/// What a row of the side-by-side view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Same,
    /// Only on the left.
    Removed,
    /// Only on the right.
    Added,
    /// A left line replaced by a right line.
    Changed,
}

impl Change {
    /// The CSS class of the row.
    pub fn class(self) -> &'static str {
        match self {
            Change::Same => "same",
            Change::Removed => "removed",
            Change::Added => "added",
            Change::Changed => "changed",
        }
    }
}

/// One row: the left line (number, text) and the right line, either absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub change: Change,
    pub left: Option<(usize, String)>,
    pub right: Option<(usize, String)>,
}

impl Row {
    pub fn left_number(&self) -> String {
        self.left
            .as_ref()
            .map(|l| l.0.to_string())
            .unwrap_or_default()
    }
    pub fn left_text(&self) -> &str {
        self.left.as_ref().map_or("", |l| l.1.as_str())
    }
    pub fn right_number(&self) -> String {
        self.right
            .as_ref()
            .map(|r| r.0.to_string())
            .unwrap_or_default()
    }
    pub fn right_text(&self) -> &str {
        self.right.as_ref().map_or("", |r| r.1.as_str())
    }
}

/// The rows of `left` against `right`: common lines side by side; a run of removed
/// lines followed by added ones pairs up as changed rows.
pub fn side_by_side(left: &str, right: &str) -> Vec<Row> {
    let a: Vec<&str> = left.lines().collect();
    let b: Vec<&str> = right.lines().collect();
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut rows = Vec::new();
    let mut removed: Vec<(usize, String)> = Vec::new();
    let mut added: Vec<(usize, String)> = Vec::new();
    let flush = |rows: &mut Vec<Row>, removed: &mut Vec<_>, added: &mut Vec<_>| {
        let mut removed = std::mem::take(removed).into_iter();
        let mut added = std::mem::take(added).into_iter();
        loop {
            let row = match (removed.next(), added.next()) {
                (None, None) => break,
                (Some(l), Some(r)) => Row {
                    change: Change::Changed,
                    left: Some(l),
                    right: Some(r),
                },
                (Some(l), None) => Row {
                    change: Change::Removed,
                    left: Some(l),
                    right: None,
                },
                (None, Some(r)) => Row {
                    change: Change::Added,
                    left: None,
                    right: Some(r),
                },
            };
            rows.push(row);
        }
    };
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            flush(&mut rows, &mut removed, &mut added);
            rows.push(Row {
                change: Change::Same,
                left: Some((i + 1, a[i].to_owned())),
                right: Some((j + 1, b[j].to_owned())),
            });
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push((j + 1, b[j].to_owned()));
            j += 1;
        } else {
            removed.push((i + 1, a[i].to_owned()));
            i += 1;
        }
    }
    flush(&mut rows, &mut removed, &mut added);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_lines_pair_up_and_edits_show_on_their_side() {
        let rows = side_by_side("a\nb\nc\nd", "a\nB\nc\nd\ne");
        let shape: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.change,
                    r.left_text().to_owned(),
                    r.right_text().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (Change::Same, "a".into(), "a".into()),
                (Change::Changed, "b".into(), "B".into()),
                (Change::Same, "c".into(), "c".into()),
                (Change::Same, "d".into(), "d".into()),
                (Change::Added, String::new(), "e".into()),
            ]
        );
        assert_eq!(rows[4].right_number(), "5");
        assert_eq!(side_by_side("x\ny", "y")[0].change, Change::Removed);
    }
}
