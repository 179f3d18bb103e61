//! The campaign matrix: dimensions `NAME=VALUES`, their cartesian product, and the cell of a run.
//!
//! Values are separated by `,`, or by `|` when the list holds one (so that values that are
//! themselves comma lists, like `--nemesis pause,kill`, can be written: `nemesis=pause,kill|all`;
//! a trailing `|` makes a single such value). The same name given twice adds values to the
//! dimension. Cells are numbered in mixed radix, the last dimension varying fastest.

use crate::run::args::UsageError;
use serde::{Deserialize, Serialize};

/// One dimension: a `harness run` option name (without `--`) and its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dim {
    pub name: String,
    pub values: Vec<String>,
}

/// The dimensions, in the order they were first given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matrix {
    dims: Vec<Dim>,
}

/// More cells than this is a typo, not a campaign.
const MAX_CELLS: u64 = 10_000;

impl Matrix {
    pub fn parse(specs: &[String]) -> Result<Matrix, UsageError> {
        let mut dims: Vec<Dim> = Vec::new();
        for spec in specs {
            let (name, values) = spec.split_once('=').ok_or_else(|| {
                UsageError(format!(
                    "--matrix {spec:?}: expected NAME=VALUES, e.g. nodes=3,5 or nemesis=pause,kill|all"
                ))
            })?;
            let name = name.trim().trim_start_matches("--").to_string();
            if name.is_empty() {
                return Err(UsageError(format!("--matrix {spec:?}: no option name")));
            }
            let sep = if values.contains('|') { '|' } else { ',' };
            let values: Vec<String> = values
                .split(sep)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect();
            if values.is_empty() {
                return Err(UsageError(format!("--matrix {spec:?}: no values")));
            }
            let dim = match dims.iter_mut().find(|d| d.name == name) {
                Some(d) => d,
                None => {
                    dims.push(Dim {
                        name,
                        values: Vec::new(),
                    });
                    let last = dims.len() - 1;
                    &mut dims[last]
                }
            };
            for v in values {
                if !dim.values.contains(&v) {
                    dim.values.push(v);
                }
            }
        }
        let m = Matrix { dims };
        let mut cells: u64 = 1;
        for d in &m.dims {
            cells = cells.saturating_mul(d.values.len() as u64);
        }
        if cells > MAX_CELLS {
            return Err(UsageError(format!(
                "--matrix: {cells} cells is more than {MAX_CELLS}"
            )));
        }
        Ok(m)
    }

    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.dims.iter().any(|d| d.name == name)
    }

    /// The number of cells (1 without dimensions).
    pub fn cells(&self) -> u64 {
        self.dims
            .iter()
            .map(|d| d.values.len().max(1) as u64)
            .product::<u64>()
            .max(1)
    }

    /// The values of cell `c` (taken mod the number of cells), in dimension order.
    pub fn cell(&self, c: u64) -> Vec<(String, String)> {
        let mut rest = c % self.cells();
        let mut out = Vec::with_capacity(self.dims.len());
        for d in self.dims.iter().rev() {
            let n = d.values.len().max(1) as u64;
            let v = d
                .values
                .get((rest % n) as usize)
                .cloned()
                .unwrap_or_default();
            out.push((d.name.clone(), v));
            rest /= n;
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(specs: &[&str]) -> Matrix {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        Matrix::parse(&specs).unwrap_or_else(|e| panic!("{e}"))
    }

    fn values(m: &Matrix, name: &str) -> Vec<String> {
        m.dims()
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.values.clone())
            .unwrap_or_default()
    }

    #[test]
    fn separators() {
        assert_eq!(values(&m(&["nodes=3,5"]), "nodes"), ["3", "5"]);
        assert_eq!(
            values(&m(&["nemesis=partition,kill,all"]), "nemesis"),
            ["partition", "kill", "all"]
        );
        assert_eq!(
            values(&m(&["nemesis=pause,kill|all"]), "nemesis"),
            ["pause,kill", "all"]
        );
        assert_eq!(
            values(&m(&["nemesis=pause,kill|"]), "nemesis"),
            ["pause,kill"]
        );
        assert_eq!(
            values(&m(&["--nodes=3", "nodes=5,3"]), "nodes"),
            ["3", "5"],
            "repeated names add values, once each"
        );
        assert_eq!(
            values(&m(&["client-opt=a=1|b=2"]), "client-opt"),
            ["a=1", "b=2"]
        );
        for bad in ["nodes", "=3", "nodes=", "nodes=|", "nodes= , "] {
            assert!(Matrix::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn cells_last_dimension_fastest() {
        let m = m(&["nodes=3,5", "nemesis=none|pause,kill|all"]);
        assert_eq!(m.cells(), 6);
        let cell = |c| {
            m.cell(c)
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(cell(0), "3 none");
        assert_eq!(cell(1), "3 pause,kill");
        assert_eq!(cell(2), "3 all");
        assert_eq!(cell(3), "5 none");
        assert_eq!(cell(5), "5 all");
        assert_eq!(cell(6), "3 none");
        let empty = Matrix::default();
        assert_eq!(empty.cells(), 1);
        assert!(empty.cell(3).is_empty());
    }
}
