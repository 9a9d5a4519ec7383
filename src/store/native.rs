//! The DuckDB C API paths duckdb-rs does not expose, for bulk imports:
//! the database handle itself (so that a raw connection can live next to
//! the duckdb-rs ones), appending Arrow record batches with DuckDB's own
//! C++ conversion (`duckdb_data_chunk_from_arrow`; duckdb-rs converts Arrow
//! string columns value by value through the FFI, ~1.5x slower on the
//! 32-column events table: 0.34 vs 0.49 M rows/s), and inserting an Arrow
//! stream through DuckDB's own Arrow scan (`duckdb_arrow_scan`), the path
//! of DuckDB's bulk `INSERT … SELECT`: row groups compressed and written on
//! all of DuckDB's threads as they fill, where the appender copies rows
//! into transaction-local storage on one thread and compresses them again
//! at commit (10 M queue_log lines: 14.8 s vs 30.6 s, `bench/import.sh`).
//! `duckdb_arrow_scan` is marked deprecated in DuckDB's C API; should an
//! upgrade drop it, [`RawConn::append`] is the slower path that remains.
//!
//! Everything unsafe is here, behind [`RawDb`] and [`RawConn`].

use super::StoreError;
use duckdb::arrow::array::{Array, RecordBatch, RecordBatchIterator, StructArray};
use duckdb::arrow::ffi::{to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use duckdb::arrow::ffi_stream::FFI_ArrowArrayStream;
use duckdb::ffi;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

fn native(what: &'static str, msg: impl Into<String>) -> StoreError {
    StoreError::Native {
        what,
        message: msg.into(),
    }
}

/// An open DuckDB database (closed when the last handle goes).
#[derive(Debug)]
pub struct RawDb {
    db: ffi::duckdb_database,
}

// The database handle is shared by connections on any thread (DuckDB's
// DatabaseInstance is thread-safe); only open/close touch it here.
unsafe impl Send for RawDb {}
unsafe impl Sync for RawDb {}

impl RawDb {
    /// Opens `path` and a duckdb-rs connection to it.
    pub fn open(path: &Path) -> Result<(Arc<RawDb>, duckdb::Connection), StoreError> {
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| native("opening the store", "the path contains a NUL byte"))?;
        let mut db: ffi::duckdb_database = ptr::null_mut();
        let mut err: *mut std::os::raw::c_char = ptr::null_mut();
        // SAFETY: valid C string and out-pointers; on failure `err` is
        // either null or a message DuckDB allocated for us to free.
        let rc =
            unsafe { ffi::duckdb_open_ext(c_path.as_ptr(), &mut db, ptr::null_mut(), &mut err) };
        if rc != ffi::DuckDBSuccess {
            let message = if err.is_null() {
                "unknown error".to_string()
            } else {
                // SAFETY: a NUL-terminated string from DuckDB, freed once.
                let m = unsafe { CStr::from_ptr(err) }
                    .to_string_lossy()
                    .into_owned();
                unsafe { ffi::duckdb_free(err.cast()) };
                m
            };
            return Err(native("opening the store", message));
        }
        let raw = Arc::new(RawDb { db });
        // SAFETY: `db` is open and outlives the connection (the Store keeps
        // `raw` after its connections, and duckdb-rs does not close it).
        let conn = unsafe { duckdb::Connection::open_from_raw(db) }
            .map_err(|e| native("connecting to the store", e.to_string()))?;
        Ok((raw, conn))
    }

    /// A duckdb-rs connection to this database (it must not outlive `self`).
    pub fn connection(&self) -> Result<duckdb::Connection, StoreError> {
        // SAFETY: `db` is open while `self` lives, and the caller keeps
        // `self` until the connection is closed (see `database::Conn`);
        // duckdb-rs does not close a database it did not open.
        unsafe { duckdb::Connection::open_from_raw(self.db) }
            .map_err(|e| native("connecting to the store", e.to_string()))
    }

    /// A raw connection (for [`RawConn::append`]).
    pub fn connect(self: &Arc<RawDb>) -> Result<RawConn, StoreError> {
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: the database is open while `self` lives; RawConn keeps it.
        if unsafe { ffi::duckdb_connect(self.db, &mut con) } != ffi::DuckDBSuccess {
            return Err(native("connecting to the store", "duckdb_connect failed"));
        }
        Ok(RawConn {
            con,
            _db: self.clone(),
            stage: None,
        })
    }
}

impl Drop for RawDb {
    fn drop(&mut self) {
        // SAFETY: opened by duckdb_open_ext, closed once; DuckDB keeps the
        // instance alive for connections still open.
        unsafe { ffi::duckdb_close(&mut self.db) };
    }
}

/// A connection made through the C API.
#[derive(Debug)]
pub struct RawConn {
    con: ffi::duckdb_connection,
    _db: Arc<RawDb>,
    /// The catalogs [`RawConn::stage_arrow`] switches between, once set up.
    stage: Option<StageCatalogs>,
}

/// The store's own catalog and the in-memory one that holds staged views.
#[derive(Debug)]
struct StageCatalogs {
    home: String,
    stage: String,
}

/// Rows of a DuckDB row group. A bulk transaction that appends at least one
/// full row group has its optimistically written row groups merged into the
/// table as they are; a smaller one is re-appended row by row at commit.
pub const ROW_GROUP_ROWS: usize = 122_880;

// A connection is used by one thread at a time (the Store keeps it behind a
// mutex); DuckDB allows moving it between threads.
unsafe impl Send for RawConn {}

/// Rows per DataChunk (DuckDB's standard vector size).
const CHUNK: usize = 2048;

impl RawConn {
    /// Runs SQL without results (`BEGIN`, `COMMIT`, literal-only statements).
    pub fn exec(&self, sql: &str) -> Result<(), StoreError> {
        let c_sql = CString::new(sql).map_err(|_| native("running SQL", "NUL byte in SQL"))?;
        // SAFETY: zeroed result is what duckdb_query expects; destroyed once.
        unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            let rc = ffi::duckdb_query(self.con, c_sql.as_ptr(), &mut res);
            let err = (rc != ffi::DuckDBSuccess).then(|| {
                let p = ffi::duckdb_result_error(&mut res);
                if p.is_null() {
                    "unknown error".to_string()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            });
            ffi::duckdb_destroy_result(&mut res);
            match err {
                Some(e) => Err(native("running SQL", e)),
                None => Ok(()),
            }
        }
    }

    /// Sets up [`RawConn::stage_arrow`]: `home` is the store's catalog
    /// (`SELECT current_database()`); an in-memory catalog is attached next
    /// to it for the staged views.
    pub fn enable_staging(&mut self, home: &str) -> Result<(), StoreError> {
        let stage = if home == "calltrail_stage" {
            "calltrail_stage_2"
        } else {
            "calltrail_stage"
        };
        self.exec(&format!(
            "ATTACH IF NOT EXISTS ':memory:' AS {}",
            quote_ident(stage)
        ))?;
        self.stage = Some(StageCatalogs {
            home: home.to_string(),
            stage: stage.to_string(),
        });
        Ok(())
    }

    /// Stages `batches` (one schema, columns in the target table's order) as
    /// a view over DuckDB's Arrow scan, for [`ArrowStage::insert_into`] in
    /// the transaction that follows. Call it outside that transaction: the
    /// view lives in the in-memory catalog of [`RawConn::enable_staging`]
    /// (a transaction may write to one database only, and no trace of the
    /// view may reach the store's WAL), and is dropped with the stage.
    ///
    /// Give several batches of about [`ROW_GROUP_ROWS`] rather than one big
    /// one: DuckDB's threads take the stream's batches in turn.
    pub fn stage_arrow(&self, batches: Vec<RecordBatch>) -> Result<ArrowStage<'_>, StoreError> {
        let cats = self
            .stage
            .as_ref()
            .ok_or_else(|| native("staging", "staging is not enabled on this connection"))?;
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let schema = match batches.first() {
            Some(b) if rows > 0 => b.schema(),
            // Nothing to insert: no view (DuckDB cannot scan an empty schema).
            _ => {
                return Ok(ArrowStage {
                    conn: self,
                    view: None,
                    rows: 0,
                    _stream: None,
                })
            }
        };
        if batches.iter().any(|b| b.schema() != schema) {
            return Err(native("staging", "the batches differ in schema"));
        }
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        let mut stream = Box::new(FFI_ArrowArrayStream::new(Box::new(reader)));
        let view = format!(
            "{}.main.{}",
            quote_ident(&cats.stage),
            quote_ident(&format!("arrow_{:x}", self.con as usize))
        );
        let c_name = CString::new(format!("arrow_{:x}", self.con as usize))
            .map_err(|_| native("staging", "NUL byte in the view name"))?;
        // `duckdb_arrow_scan` makes its view in the connection's default
        // catalog: switch to the stage for the call and back in any case.
        self.exec(&format!("USE {}", quote_ident(&cats.stage)))?;
        // SAFETY: the stream is boxed in the returned stage, which drops the
        // view (the only reader of the stream) before the stream. DuckDB does
        // not take ownership of the stream.
        let rc = unsafe {
            ffi::duckdb_arrow_scan(
                self.con,
                c_name.as_ptr(),
                &mut *stream as *mut FFI_ArrowArrayStream as ffi::duckdb_arrow_stream,
            )
        };
        // Owned by the stage from here, so that any early return drops the
        // view (by its qualified name) before the stream it reads.
        let stage = ArrowStage {
            conn: self,
            view: (rc == ffi::DuckDBSuccess).then_some(view),
            rows,
            _stream: Some(stream),
        };
        self.exec(&format!("USE {}", quote_ident(&cats.home)))?;
        if stage.view.is_none() {
            return Err(native("staging", "duckdb_arrow_scan failed"));
        }
        Ok(stage)
    }

    /// Appends `batch` (columns in the table's order) to `table` in the
    /// connection's current transaction; returns the rows appended.
    pub fn append(&self, table: &str, batch: &RecordBatch) -> Result<usize, StoreError> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(0);
        }
        let c_table =
            CString::new(table).map_err(|_| native("appending", "NUL byte in table name"))?;
        let schema = FFI_ArrowSchema::try_from(batch.schema().as_ref())
            .map_err(|e| native("appending", e.to_string()))?;
        let mut app: ffi::duckdb_appender = ptr::null_mut();
        let mut converted: ffi::duckdb_arrow_converted_schema = ptr::null_mut();
        // SAFETY: every handle created here is destroyed below on all paths;
        // Arrow arrays are handed over by move (DuckDB nulls their release).
        unsafe {
            if ffi::duckdb_appender_create(self.con, ptr::null(), c_table.as_ptr(), &mut app)
                != ffi::DuckDBSuccess
            {
                let e = appender_error(app);
                ffi::duckdb_appender_destroy(&mut app);
                return Err(native("opening the appender", e));
            }
            let result = (|| -> Result<(), StoreError> {
                check(ffi::duckdb_schema_from_arrow(
                    self.con,
                    &schema as *const FFI_ArrowSchema as *mut ffi::ArrowSchema,
                    &mut converted,
                ))?;
                let mut off = 0;
                while off < rows {
                    let n = CHUNK.min(rows - off);
                    // A slice: the C++ converter honours Arrow offsets
                    // (tested below against duckdb-rs's own appender).
                    let data = StructArray::from(batch.slice(off, n)).into_data();
                    let (mut array, _schema) =
                        to_ffi(&data).map_err(|e| native("appending", e.to_string()))?;
                    let mut chunk: ffi::duckdb_data_chunk = ptr::null_mut();
                    check(ffi::duckdb_data_chunk_from_arrow(
                        self.con,
                        &mut array as *mut FFI_ArrowArray as *mut ffi::ArrowArray,
                        converted,
                        &mut chunk,
                    ))?;
                    let rc = ffi::duckdb_append_data_chunk(app, chunk);
                    ffi::duckdb_destroy_data_chunk(&mut chunk);
                    if rc != ffi::DuckDBSuccess {
                        return Err(native("appending", appender_error(app)));
                    }
                    off += n;
                }
                if ffi::duckdb_appender_flush(app) != ffi::DuckDBSuccess {
                    return Err(native("appending", appender_error(app)));
                }
                Ok(())
            })();
            if !converted.is_null() {
                ffi::duckdb_destroy_arrow_converted_schema(&mut converted);
            }
            ffi::duckdb_appender_destroy(&mut app);
            result.map(|()| rows)
        }
    }
}

impl Drop for RawConn {
    fn drop(&mut self) {
        // SAFETY: connected once by duckdb_connect, disconnected once.
        unsafe { ffi::duckdb_disconnect(&mut self.con) };
    }
}

/// An Arrow stream staged by [`RawConn::stage_arrow`]; its view is dropped
/// with it.
pub struct ArrowStage<'c> {
    conn: &'c RawConn,
    /// The view's qualified, quoted name (none when there are no rows).
    view: Option<String>,
    rows: usize,
    /// Read by the view; outlives it.
    _stream: Option<Box<FFI_ArrowArrayStream>>,
}

impl ArrowStage<'_> {
    /// `INSERT INTO table SELECT * FROM` the staged stream, in the
    /// connection's current transaction (the stream can be read once).
    /// Returns the rows inserted.
    pub fn insert_into(&self, table: &str) -> Result<usize, StoreError> {
        let Some(view) = &self.view else {
            return Ok(0);
        };
        self.conn.exec(&format!(
            "INSERT INTO {} SELECT * FROM {view}",
            quote_ident(table)
        ))?;
        Ok(self.rows)
    }
}

impl Drop for ArrowStage<'_> {
    fn drop(&mut self) {
        // A view left behind by a failure here is replaced by the next
        // stage of this connection, and the stage catalog is in memory.
        let Some(view) = &self.view else { return };
        if let Err(e) = self.conn.exec(&format!("DROP VIEW IF EXISTS {view}")) {
            tracing::debug!(error = %e, "dropping a staged view");
        }
    }
}

/// `s` as a quoted SQL identifier.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// # Safety
/// `app` is an appender handle (possibly failed) or null.
unsafe fn appender_error(app: ffi::duckdb_appender) -> String {
    if app.is_null() {
        return "appender not created".into();
    }
    // SAFETY: per the function's contract.
    let p = unsafe { ffi::duckdb_appender_error(app) };
    if p.is_null() {
        "unknown appender error".into()
    } else {
        // SAFETY: a NUL-terminated string owned by the appender.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// # Safety
/// `e` is null or an error-data handle DuckDB returned.
unsafe fn check(e: ffi::duckdb_error_data) -> Result<(), StoreError> {
    if e.is_null() {
        return Ok(());
    }
    let mut e = e;
    // SAFETY: per the function's contract; destroyed once.
    unsafe {
        let failed = ffi::duckdb_error_data_has_error(e);
        let msg = if failed {
            let p = ffi::duckdb_error_data_message(e);
            Some(if p.is_null() {
                "unknown error".to_string()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            })
        } else {
            None
        };
        ffi::duckdb_destroy_error_data(&mut e);
        match msg {
            Some(m) => Err(native("converting Arrow data", m)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::arrow::array::{ArrayRef, BinaryArray, Int64Array, StringArray};
    use duckdb::arrow::datatypes::{DataType, Field, Schema};

    /// `n` rows with strings long and short, NULLs and bytes.
    fn sample_batch(n: usize) -> RecordBatch {
        let s: StringArray = (0..n)
            .map(|i| match i % 3 {
                0 => None,
                1 => Some(format!("x{i}")),
                _ => Some(format!("a longer string, past twelve bytes: {i} кириллица")),
            })
            .collect();
        let b: BinaryArray = (0..n)
            .map(|i| (i % 5 != 0).then(|| vec![0u8, 1, (i % 256) as u8]))
            .collect::<Vec<_>>()
            .iter()
            .map(|v| v.as_deref())
            .collect();
        let i: Int64Array = (0..n).map(|i| (i % 7 != 0).then_some(i as i64)).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Binary, true),
        ]));
        let cols: Vec<ArrayRef> = vec![Arc::new(i), Arc::new(s), Arc::new(b)];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    const TABLES: &str =
        "CREATE TABLE a (i BIGINT, s VARCHAR, b BLOB); CREATE TABLE b (i BIGINT, s VARCHAR, b BLOB);";

    /// Appends `batch` to table `b` with duckdb-rs's own appender, and
    /// checks that table `a` holds exactly the same `n` rows.
    fn assert_a_is_the_duckdb_rs_append(conn: &duckdb::Connection, batch: &RecordBatch, n: usize) {
        let mut app = conn.appender("b").unwrap();
        app.append_record_batch(batch.clone()).unwrap();
        app.flush().unwrap();
        drop(app);
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM a"), n as i64);
        assert_eq!(
            count("SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM b)"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM (SELECT * FROM b EXCEPT ALL SELECT * FROM a)"),
            0
        );
    }

    /// 5,000 rows (three chunks, the later ones slices at an offset) land
    /// exactly as duckdb-rs's own appender stores them.
    #[test]
    fn native_append_equals_the_duckdb_rs_appender() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, conn) = RawDb::open(&dir.path().join("n.duckdb")).unwrap();
        conn.execute_batch(TABLES).unwrap();
        let n = 5_000;
        let batch = sample_batch(n);
        let rc = raw.connect().unwrap();
        assert_eq!(rc.append("a", &batch).unwrap(), n);
        assert_a_is_the_duckdb_rs_append(&conn, &batch, n);
        // A failed append (no such table) is an error, and the connection
        // stays usable.
        assert!(rc.append("missing", &batch).is_err());
        rc.exec("SELECT 1").unwrap();
        drop(rc);
        drop(conn);
        drop(raw);
    }

    /// A staged Arrow stream (slices at offsets, several batches) lands
    /// exactly as the appender stores it, in the store whatever its
    /// catalog's name; a rollback keeps nothing; and neither the stage
    /// catalog nor a view is left in the store file.
    #[test]
    fn staged_arrow_insert_equals_the_appender_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("it's a \"store\".duckdb");
        let n = 5_000;
        let batch = sample_batch(n);
        {
            let (raw, conn) = RawDb::open(&path).unwrap();
            conn.execute_batch(TABLES).unwrap();
            let home: String = conn
                .query_row("SELECT current_database()", [], |r| r.get(0))
                .unwrap();
            assert_eq!(home, "it's a \"store\"");
            let mut rc = raw.connect().unwrap();
            assert!(rc.stage_arrow(vec![batch.clone()]).is_err(), "not enabled");
            rc.enable_staging(&home).unwrap();
            let slices = vec![batch.slice(0, 2_000), batch.slice(2_000, 3_000)];
            let stage = rc.stage_arrow(slices).unwrap();
            rc.exec("BEGIN TRANSACTION").unwrap();
            assert_eq!(stage.insert_into("a").unwrap(), n);
            rc.exec("COMMIT").unwrap();
            drop(stage);
            assert_a_is_the_duckdb_rs_append(&conn, &batch, n);
            let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
            // Rolled back: nothing stays. Staged again on the same
            // connection: a view of the same name, made anew.
            let stage = rc.stage_arrow(vec![batch.slice(10, 100)]).unwrap();
            rc.exec("BEGIN TRANSACTION").unwrap();
            assert_eq!(stage.insert_into("a").unwrap(), 100);
            rc.exec("ROLLBACK").unwrap();
            drop(stage);
            assert_eq!(count("SELECT count(*) FROM a"), n as i64);
            // Nothing to insert; an insert into a table that is not there
            // fails and the connection stays usable; batches of two schemas
            // are refused.
            assert_eq!(rc.stage_arrow(vec![]).unwrap().insert_into("a").unwrap(), 0);
            let stage = rc.stage_arrow(vec![batch.slice(0, 10)]).unwrap();
            assert!(stage.insert_into("missing").is_err());
            drop(stage);
            rc.exec("SELECT 1").unwrap();
            let other = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
                vec![Arc::new(Int64Array::from(vec![1i64])) as ArrayRef],
            )
            .unwrap();
            assert!(rc.stage_arrow(vec![batch.slice(0, 1), other]).is_err());
            // No view is left, in the stage or in the store, and the
            // connection is back on the store.
            assert_eq!(
                count("SELECT count(*) FROM duckdb_views() WHERE NOT internal"),
                0
            );
            rc.exec("INSERT INTO a (i) VALUES (-1)").unwrap();
            assert_eq!(count("SELECT count(*) FROM a WHERE i = -1"), 1);
            drop(rc);
            drop(conn);
            drop(raw);
        }
        let (raw, conn) = RawDb::open(&path).unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT database_name FROM duckdb_databases() WHERE NOT internal")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(names, vec!["it's a \"store\"".to_string()]);
        let views: i64 = conn
            .query_row(
                "SELECT count(*) FROM duckdb_views() WHERE NOT internal",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(views, 0);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, n as i64 + 1);
        drop(conn);
        drop(raw);
    }
}
