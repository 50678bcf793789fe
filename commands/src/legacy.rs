//! The old platform's catalogue (CCExtractor's Flask sample platform): its
//! MySQL tables, read from a `mysqldump` file or a directory of CSV exports
//! (one comma-separated `TABLE.csv` with a header row per table), mapped to
//! a catalogue file that imports like any other.
//!
//! The tables read: `sample` (id, sha, extension, original_name),
//! `category` (id, name), `regression_test` (id, sample_id, command,
//! input_type, output_type, expected_rc, active), `regression_test_category`
//! (regression_id, category_id), `regression_test_output` (id,
//! regression_id, correct, correct_extension, expected_filename, ignore) and
//! `regression_test_output_files` (regression_test_output_id, file_hashes).
//!
//! The old meanings are kept: a sample's file is `{sha}.{extension}` in the
//! samples directory; an expected output file is named
//! `{sample sha}{expected_filename}{correct_extension}` (here
//! `{base}{expected_filename}{correct_extension}`, `{base}` being the
//! sample's file name without extension as the runner passes it); the
//! correct file is `{correct}{correct_extension}` in the results directory,
//! and its SHA-256 is the approved hash (without the file, `correct` must be
//! a SHA-256 itself). A test that cannot be mapped whole is not imported and
//! is listed with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sp_domain::catalogue::{OutputDefinition, Sample, TestDefinition, is_sha256};
use sp_domain::{InputKind, OutputKind};

use crate::catalogue_file::{CatalogueFile, FileSample};

/// One row: column to value, `None` for SQL `NULL`.
pub type Row = BTreeMap<String, Option<String>>;

/// The old platform's tables, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables(pub BTreeMap<String, Vec<Row>>);

impl Tables {
    fn rows(&self, table: &str) -> &[Row] {
        self.0.get(table).map(Vec::as_slice).unwrap_or_default()
    }
}

/// A dump file or a directory of CSV files.
pub fn read(path: &Path) -> Result<Tables, String> {
    if path.is_dir() {
        return read_csv_dir(path);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_dump(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What could be mapped, and what could not (and why).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Legacy {
    pub file: CatalogueFile,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `sample 7`, `regression test 12`.
    pub what: String,
    pub why: String,
}

/// Map the tables to a catalogue file; samples are read from `samples`,
/// correct outputs from `results` when given.
pub fn map(tables: &Tables, samples: &Path, results: Option<&Path>) -> Legacy {
    let mut legacy = Legacy::default();
    let mut sample_by_id: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    for row in tables.rows("sample") {
        let id = field(row, "id");
        match map_sample(row, samples) {
            Ok(sample) => {
                sample_by_id.insert(id, Ok(sample.sample.sha256.clone()));
                if !legacy
                    .file
                    .samples
                    .iter()
                    .any(|s| s.sample.sha256 == sample.sample.sha256)
                {
                    legacy.file.samples.push(sample);
                }
            }
            Err(why) => {
                legacy.skipped.push(Skipped {
                    what: format!("sample {id}"),
                    why: why.clone(),
                });
                sample_by_id.insert(id, Err(why));
            }
        }
    }
    let categories: BTreeMap<String, String> = tables
        .rows("category")
        .iter()
        .map(|r| (field(r, "id"), field(r, "name")))
        .collect();
    let mut tests: Vec<&Row> = tables.rows("regression_test").iter().collect();
    tests.sort_by_key(|r| field(r, "id").parse::<i64>().unwrap_or(i64::MAX));
    for row in tests {
        let id = field(row, "id");
        let mapped = map_test(row, tables, &sample_by_id, &categories, results);
        match mapped {
            Ok((test, expected)) => {
                legacy.file.tests.push(test);
                for e in expected {
                    if !legacy.file.expected.contains(&e) {
                        legacy.file.expected.push(e);
                    }
                }
            }
            Err(why) => legacy.skipped.push(Skipped {
                what: format!("regression test {id}"),
                why,
            }),
        }
    }
    legacy
}

fn field(row: &Row, column: &str) -> String {
    row.get(column).cloned().flatten().unwrap_or_default()
}

fn flag(row: &Row, column: &str) -> bool {
    matches!(
        field(row, column).to_ascii_lowercase().as_str(),
        "1" | "true" | "t" | "yes"
    )
}

fn map_sample(row: &Row, dir: &Path) -> Result<FileSample, String> {
    let sha = field(row, "sha");
    let extension = field(row, "extension").trim_start_matches('.').to_string();
    let name = if extension.is_empty() {
        sha.clone()
    } else {
        format!("{sha}.{extension}")
    };
    let path = dir.join(&name);
    let content_hash =
        hash_file(&path).map_err(|e| format!("its file {name} in {}: {e}", dir.display()))?;
    let size_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let original = field(row, "original_name");
    Ok(FileSample {
        sample: Sample {
            sha256: content_hash,
            name: if original.is_empty() { name } else { original },
            extension,
            size_bytes,
            tags: vec![],
            url: None,
        },
        source: Some(path),
    })
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

type Expected = Vec<(String, PathBuf)>;

fn map_test(
    row: &Row,
    tables: &Tables,
    samples: &BTreeMap<String, Result<String, String>>,
    categories: &BTreeMap<String, String>,
    results: Option<&Path>,
) -> Result<(TestDefinition, Expected), String> {
    let id = field(row, "id");
    let sample_id = field(row, "sample_id");
    let sample = match samples.get(&sample_id) {
        Some(Ok(sha)) => sha.clone(),
        Some(Err(why)) => return Err(format!("its sample {sample_id} was not imported: {why}")),
        None => return Err(format!("its sample {sample_id} is not in the sample table")),
    };
    let input_type = field(row, "input_type");
    let input = InputKind::named(&input_type).map_err(|why| format!("input_type {why}"))?;
    let output_type = field(row, "output_type");
    let output = OutputKind::named(&output_type).map_err(|why| format!("output_type {why}"))?;
    let expected_rc = field(row, "expected_rc");
    let expected_exit_code: i32 = expected_rc
        .trim()
        .parse()
        .map_err(|_| format!("expected_rc {expected_rc:?} is not a number"))?;
    let mut test_categories = Vec::new();
    for link in tables
        .rows("regression_test_category")
        .iter()
        .filter(|r| field(r, "regression_id") == id)
    {
        let category = field(link, "category_id");
        let name = categories
            .get(&category)
            .ok_or_else(|| format!("its category {category} is not in the category table"))?;
        test_categories.push(name.clone());
    }
    test_categories.sort();
    let mut rows: Vec<&Row> = tables
        .rows("regression_test_output")
        .iter()
        .filter(|r| field(r, "regression_id") == id)
        .collect();
    rows.sort_by_key(|r| field(r, "id").parse::<i64>().unwrap_or(i64::MAX));
    let mut outputs = Vec::new();
    let mut expected = Vec::new();
    let mut extension = String::new();
    for o in rows {
        let output_id = field(o, "id");
        let ext = field(o, "correct_extension");
        extension.clone_from(&ext);
        let name = format!("{{base}}{}{ext}", field(o, "expected_filename"));
        let approved = correct(&field(o, "correct"), &ext, results, &mut expected)
            .map_err(|why| format!("output {output_id}: {why}"))?;
        let mut variants = Vec::new();
        for v in tables
            .rows("regression_test_output_files")
            .iter()
            .filter(|r| field(r, "regression_test_output_id") == output_id)
        {
            let hash = correct(&field(v, "file_hashes"), &ext, results, &mut expected)
                .map_err(|why| format!("output {output_id}, a variant: {why}"))?;
            if hash != approved && !variants.contains(&hash) {
                variants.push(hash);
            }
        }
        // In hash order: the same rows read in another order (a dump, CSV
        // files) must define the same test.
        variants.sort();
        outputs.push(OutputDefinition {
            name,
            approved_sha256: approved,
            variants,
            ignore: flag(o, "ignore"),
            platforms: BTreeMap::new(),
        });
    }
    if output == OutputKind::Null {
        // The old platform kept rows for null tests; nothing is compared.
        outputs.clear();
        expected.clear();
    }
    let command = command(&field(row, "command"), input, output, &outputs, &extension);
    let test = TestDefinition {
        id: format!("legacy-{id}"),
        sample,
        command: command.clone(),
        input,
        expected_exit_code,
        categories: test_categories,
        active: flag(row, "active"),
        description: format!("regression test {id} of the old platform"),
        platforms: None,
        output_pattern: output
            .is_multi_file()
            .then(|| format!("{{base}}*{extension}")),
        outputs,
        output,
    };
    test.check_kinds()?;
    Ok((test, expected))
}

/// The approved hash a `correct` value stands for: the SHA-256 of
/// `{correct}{ext}` in the results directory, or `correct` itself when it
/// is a SHA-256.
fn correct(
    correct: &str,
    ext: &str,
    results: Option<&Path>,
    expected: &mut Expected,
) -> Result<String, String> {
    if let Some(dir) = results {
        let path = dir.join(format!("{correct}{ext}"));
        if path.is_file() {
            let hash = hash_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            expected.push((hash.clone(), path));
            return Ok(hash);
        }
    }
    if is_sha256(correct) {
        return Ok(correct.to_ascii_lowercase());
    }
    Err(match results {
        Some(dir) => format!(
            "{correct}{ext} is not in {}, and {correct:?} is not a SHA-256",
            dir.display()
        ),
        None => format!("{correct:?} is not a SHA-256 (give --results with {correct}{ext})"),
    })
}

/// The old platform kept only CCExtractor's arguments; the rest of its
/// command line was the test harness's. Here it is written out per kind.
fn command(
    arguments: &str,
    input: InputKind,
    output: OutputKind,
    outputs: &[OutputDefinition],
    extension: &str,
) -> String {
    let mut parts = vec!["{exe}".to_string()];
    if !arguments.trim().is_empty() {
        parts.push(arguments.trim().to_string());
    }
    parts.push(
        match input {
            InputKind::File => "{sample}",
            InputKind::Stdin => "-",
            InputKind::Udp => "-udp 127.0.0.1:{port}",
        }
        .to_string(),
    );
    let written = match output {
        OutputKind::File => outputs
            .first()
            .map(|first| format!("-o {{outdir}}/{}", first.name)),
        OutputKind::Stdout => Some("--stdout".into()),
        OutputKind::Report => Some("-out=report".into()),
        OutputKind::Null => Some("-out=null".into()),
        OutputKind::Cea708 => Some(format!("-o {{outdir}}/{{base}}{extension}")),
        OutputKind::Multiprogram => {
            Some(format!("-multiprogram -o {{outdir}}/{{base}}{extension}"))
        }
        OutputKind::Tcp => Some("-sendto 127.0.0.1:{port}".into()),
    };
    parts.extend(written);
    parts.join(" ")
}

/// The `CREATE TABLE` and `INSERT` statements of a `mysqldump`; every other
/// statement (`SET`, `LOCK TABLES`, comments) is passed over.
pub fn parse_dump(text: &str) -> Result<Tables, String> {
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tables = Tables::default();
    for statement in statements(text) {
        let trimmed = statement.trim_start();
        let upper: String = trimmed
            .chars()
            .take(12)
            .collect::<String>()
            .to_ascii_uppercase();
        if upper.starts_with("CREATE TABLE") {
            let (name, cols) = create_table(trimmed)?;
            columns.insert(name, cols);
        } else if upper.starts_with("INSERT INTO") {
            let (name, named, rows) = insert(trimmed)?;
            let cols = match named {
                Some(cols) => cols,
                None => columns
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| format!("INSERT INTO {name} before its CREATE TABLE"))?,
            };
            for values in rows {
                if values.len() != cols.len() {
                    return Err(format!(
                        "a row of {name} has {} values for {} columns",
                        values.len(),
                        cols.len()
                    ));
                }
                let row: Row = cols.iter().cloned().zip(values).collect();
                tables.0.entry(name.clone()).or_default().push(row);
            }
        }
    }
    Ok(tables)
}

/// Statements split at `;` outside strings, quoted names and comments.
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                current.push(c);
                while let Some(d) = chars.next() {
                    current.push(d);
                    if d == '\\' && c != '`' {
                        if let Some(e) = chars.next() {
                            current.push(e);
                        }
                    } else if d == c {
                        if chars.peek() == Some(&c) {
                            current.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') && current.trim().is_empty() => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '#' if current.trim().is_empty() => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for d in chars.by_ref() {
                    if last == '*' && d == '/' {
                        break;
                    }
                    last = d;
                }
            }
            ';' => {
                if !current.trim().is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
            }
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn unquote_name(name: &str) -> String {
    name.trim().trim_matches('`').trim_matches('"').to_string()
}

/// `CREATE TABLE name ( col type …, …, KEY … )`: its name and columns.
fn create_table(statement: &str) -> Result<(String, Vec<String>), String> {
    let open = statement
        .find('(')
        .ok_or("a CREATE TABLE without columns")?;
    let name = statement["CREATE TABLE".len()..open]
        .trim()
        .trim_start_matches("IF NOT EXISTS")
        .trim();
    let name = unquote_name(name);
    let close = statement
        .rfind(')')
        .filter(|&close| close > open)
        .ok_or("a CREATE TABLE whose columns never close")?;
    let body = &statement[open + 1..close];
    let mut columns = Vec::new();
    for definition in split_top_level(body) {
        let definition = definition.trim();
        let first = definition.split_whitespace().next().unwrap_or_default();
        let keyword = first.to_ascii_uppercase();
        if [
            "PRIMARY",
            "KEY",
            "UNIQUE",
            "CONSTRAINT",
            "INDEX",
            "FOREIGN",
            "FULLTEXT",
            "CHECK",
        ]
        .contains(&keyword.as_str())
        {
            continue;
        }
        if !first.is_empty() {
            columns.push(unquote_name(first));
        }
    }
    Ok((name, columns))
}

/// Split at commas outside parentheses and quotes.
fn split_top_level(body: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for c in body.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

type Inserted = (String, Option<Vec<String>>, Vec<Vec<Option<String>>>);

/// `INSERT INTO name [(cols)] VALUES (…),(…)`.
fn insert(statement: &str) -> Result<Inserted, String> {
    let rest = statement["INSERT INTO".len()..].trim_start();
    let values_at = find_keyword(rest, "VALUES").ok_or("an INSERT without VALUES")?;
    let head = rest[..values_at].trim();
    let (name, named) = match head.find('(') {
        Some(open) => {
            let close = head
                .rfind(')')
                .filter(|&close| close > open)
                .ok_or("an INSERT whose column list never closes")?;
            let cols = head[open + 1..close].split(',').map(unquote_name).collect();
            (unquote_name(&head[..open]), Some(cols))
        }
        None => (unquote_name(head), None),
    };
    let rows = tuples(&rest[values_at + "VALUES".len()..])
        .map_err(|e| format!("INSERT INTO {name}: {e}"))?;
    Ok((name, named, rows))
}

fn find_keyword(text: &str, keyword: &str) -> Option<usize> {
    let upper = text.to_ascii_uppercase();
    let mut from = 0;
    while let Some(at) = upper[from..].find(keyword) {
        let at = from + at;
        // A name such as `values_x` is no keyword.
        let word = |c: char| c.is_alphanumeric() || c == '_' || c == '`';
        let before = upper[..at].chars().last().is_none_or(|c| !word(c));
        let after = upper[at + keyword.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c));
        if before && after {
            return Some(at);
        }
        from = at + keyword.len();
    }
    None
}

/// `(v, v, …), (…)`: strings with MySQL's escapes, `NULL`, bare numbers.
fn tuples(text: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let mut rows = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        match chars.next() {
            None => return Ok(rows),
            Some('(') => {}
            Some(other) => return Err(format!("expected ( before a row, found {other:?}")),
        }
        let mut row = Vec::new();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.peek() {
                Some('\'') => {
                    chars.next();
                    let mut value = String::new();
                    loop {
                        match chars.next() {
                            None => return Err("a string that never ends".into()),
                            Some('\\') => match chars.next() {
                                Some('n') => value.push('\n'),
                                Some('r') => value.push('\r'),
                                Some('t') => value.push('\t'),
                                Some('0') => value.push('\0'),
                                Some('Z') => value.push('\u{1a}'),
                                Some(c) => value.push(c),
                                None => return Err("a string that never ends".into()),
                            },
                            Some('\'') if chars.peek() == Some(&'\'') => {
                                chars.next();
                                value.push('\'');
                            }
                            Some('\'') => break,
                            Some(c) => value.push(c),
                        }
                    }
                    row.push(Some(value));
                }
                _ => {
                    let mut token = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == ',' || c == ')' {
                            break;
                        }
                        token.push(c);
                        chars.next();
                    }
                    let token = token.trim();
                    row.push((!token.eq_ignore_ascii_case("NULL")).then(|| token.to_string()));
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                Some(',') => continue,
                Some(')') => break,
                other => return Err(format!("expected , or ) in a row, found {other:?}")),
            }
        }
        rows.push(row);
    }
}

/// `TABLE.csv` files, comma-separated with a header row of column names;
/// `\N` is `NULL`, as MySQL writes it in exports.
pub fn read_csv_dir(dir: &Path) -> Result<Tables, String> {
    let mut tables = Tables::default();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let table = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut reader =
            csv::Reader::from_path(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .iter()
            .map(str::to_string)
            .collect();
        let rows = tables.0.entry(table).or_default();
        for record in reader.records() {
            let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
            rows.push(
                headers
                    .iter()
                    .cloned()
                    .zip(record.iter().map(|v| (v != "\\N").then(|| v.to_string())))
                    .collect(),
            );
        }
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_is_read_with_its_escapes_nulls_and_comments() {
        let dump = "-- MySQL dump 10.13\n/*!40101 SET NAMES utf8 */;\n\
            DROP TABLE IF EXISTS `category`;\n\
            CREATE TABLE `category` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  \
            `name` varchar(64) DEFAULT NULL,\n  `description` text,\n  PRIMARY KEY (`id`),\n  \
            KEY `ix` (`name`,`id`)\n) ENGINE=InnoDB;\n\
            LOCK TABLES `category` WRITE;\n\
            INSERT INTO `category` VALUES (1,'Broadcast','it\\'s; \"fine\"'),(2,'O''Brien',NULL);\n\
            INSERT INTO `category` (`id`, `name`) VALUES (3, 'named');\n\
            UNLOCK TABLES;\n";
        let tables = parse_dump(dump).expect("parsed");
        let rows = tables.rows("category");
        assert_eq!(rows.len(), 3);
        assert_eq!(field(&rows[0], "description"), "it's; \"fine\"");
        assert_eq!(field(&rows[1], "name"), "O'Brien");
        assert_eq!(rows[1]["description"], None);
        assert_eq!(field(&rows[2], "name"), "named");
        for broken in ["CREATE TABLE `a)b` (", "INSERT INTO t (a VALUES (1)"] {
            assert!(parse_dump(broken).is_err(), "{broken}");
        }
        let named = parse_dump("INSERT INTO `values_x` (`values_y`) VALUES ('v');").expect("named");
        assert_eq!(field(&named.rows("values_x")[0], "values_y"), "v");
        let short = "CREATE TABLE t (a int, b int);\nINSERT INTO t VALUES (1);";
        let refused = parse_dump(short).expect_err("a short row");
        assert!(refused.contains("1 values for 2 columns"), "{refused}");
    }

    #[test]
    fn each_kind_gets_its_command_line() {
        let output = |name: &str| OutputDefinition {
            name: name.into(),
            approved_sha256: String::new(),
            variants: vec![],
            ignore: false,
            platforms: BTreeMap::new(),
        };
        assert_eq!(
            command(
                " -latin1 ",
                InputKind::File,
                OutputKind::File,
                &[output("{base}.srt")],
                ".srt"
            ),
            "{exe} -latin1 {sample} -o {outdir}/{base}.srt"
        );
        assert_eq!(
            command("-708", InputKind::Udp, OutputKind::Cea708, &[], ".srt"),
            "{exe} -708 -udp 127.0.0.1:{port} -o {outdir}/{base}.srt"
        );
        assert_eq!(
            command("", InputKind::Stdin, OutputKind::Tcp, &[], ""),
            "{exe} - -sendto 127.0.0.1:{port}"
        );
    }
}
