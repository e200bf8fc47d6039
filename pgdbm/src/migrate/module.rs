//! [`Module`]: what a reusable library built on pgdbm implements, and ordering modules by their
//! dependencies.

use std::collections::HashMap;

use super::MigrationSource;
use crate::error::{Error, Result};

/// A reusable piece of an application that owns tables and ships their migrations.
///
/// Plain data, no I/O: the host decides where the module lives (which pool, which schema) and
/// applies it with [`Database::migrate`](crate::Database::migrate). The same module therefore
/// works standalone (its own pool and schema) and embedded in a larger application (a shared
/// pool, a schema per module).
///
/// ```
/// use pgdbm::{MigrationSource, Module};
///
/// struct Users;
///
/// impl Module for Users {
///     fn name(&self) -> &str {
///         "users"
///     }
///     fn migrations(&self) -> MigrationSource {
///         // In a library crate: `pgdbm::embed_migrations!("migrations")`.
///         MigrationSource::from_pairs([(
///             "001_users.sql",
///             "CREATE TABLE {{tables.users}} (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);",
///         )])
///         .expect("valid migrations")
///     }
/// }
/// ```
pub trait Module: Send + Sync {
    /// The module's unique name: its key in the ledger (`module_name`, at most 100 characters)
    /// and in the advisory lock.
    fn name(&self) -> &str;

    /// The migrations the module ships, usually embedded at compile time with
    /// [`embed_migrations!`](crate::embed_migrations).
    fn migrations(&self) -> MigrationSource;

    /// The names of the modules whose migrations must be applied before this one's.
    fn depends_on(&self) -> Vec<&str> {
        Vec::new()
    }
}

impl std::fmt::Debug for dyn Module + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name())
            .field("depends_on", &self.depends_on())
            .finish()
    }
}

/// Orders `modules` so that every module comes after the modules it depends on; otherwise the
/// given order is kept.
///
/// # Errors
///
/// [`Error::ModuleOrder`] when two modules have the same name, a module depends on a module not in
/// the set, or the dependencies form a cycle (the message names it: `a -> b -> a`).
pub fn order_modules<'m>(modules: &[&'m dyn Module]) -> Result<Vec<&'m dyn Module>> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(modules.len());
    for (i, m) in modules.iter().enumerate() {
        if index.insert(m.name(), i).is_some() {
            return Err(Error::module_order(format!(
                "two modules are named {:?}",
                m.name()
            )));
        }
    }
    let mut deps = Vec::with_capacity(modules.len());
    for m in modules {
        let mut these = Vec::new();
        for dep in m.depends_on() {
            let Some(&j) = index.get(dep) else {
                return Err(Error::module_order(format!(
                    "module {:?} depends on unknown module {dep:?}",
                    m.name()
                )));
            };
            these.push(j);
        }
        deps.push(these);
    }
    // Depth-first, in the given order: 0 = unvisited, 1 = on the current path, 2 = done.
    let mut mark = vec![0u8; modules.len()];
    let mut out = Vec::with_capacity(modules.len());
    let mut path = Vec::new();
    fn visit<'m>(
        i: usize,
        modules: &[&'m dyn Module],
        deps: &[Vec<usize>],
        mark: &mut [u8],
        path: &mut Vec<usize>,
        out: &mut Vec<&'m dyn Module>,
    ) -> Result<()> {
        match mark[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut names: Vec<&str> =
                    path[start..].iter().map(|&p| modules[p].name()).collect();
                names.push(modules[i].name());
                return Err(Error::module_order(format!(
                    "dependency cycle: {}",
                    names.join(" -> ")
                )));
            }
            _ => {}
        }
        mark[i] = 1;
        path.push(i);
        for &d in &deps[i] {
            visit(d, modules, deps, mark, path, out)?;
        }
        path.pop();
        mark[i] = 2;
        out.push(modules[i]);
        Ok(())
    }
    for i in 0..modules.len() {
        visit(i, modules, &deps, &mut mark, &mut path, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct M(&'static str, Vec<&'static str>);

    impl Module for M {
        fn name(&self) -> &str {
            self.0
        }
        fn migrations(&self) -> MigrationSource {
            MigrationSource::default()
        }
        fn depends_on(&self) -> Vec<&str> {
            self.1.clone()
        }
    }

    fn names(ms: &[&dyn Module]) -> Vec<String> {
        ms.iter().map(|m| m.name().to_owned()).collect()
    }

    #[test]
    fn dependency_order() {
        let (a, b, c) = (M("a", vec!["b"]), M("b", vec!["c"]), M("c", vec![]));
        let d = M("d", vec![]);
        let ordered = order_modules(&[&a, &d, &b, &c]).unwrap();
        assert_eq!(names(&ordered), ["c", "b", "a", "d"]);
    }

    #[test]
    fn cycles_and_unknowns() {
        let (a, b, c) = (M("a", vec!["b"]), M("b", vec!["c"]), M("c", vec!["a"]));
        let e = order_modules(&[&a, &b, &c]).unwrap_err().to_string();
        assert!(e.contains("dependency cycle: a -> b -> c -> a"), "{e}");
        let selfish = M("s", vec!["s"]);
        let e = order_modules(&[&selfish]).unwrap_err().to_string();
        assert!(e.contains("s -> s"), "{e}");
        let lost = M("x", vec!["nowhere"]);
        let e = order_modules(&[&lost]).unwrap_err().to_string();
        assert!(e.contains("unknown module \"nowhere\""), "{e}");
        let e = order_modules(&[&M("x", vec![]), &M("x", vec![])]).unwrap_err();
        assert!(e.to_string().contains("two modules"), "{e}");
    }
}
