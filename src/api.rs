//! wiper as a library: open a binary, pick a function, give static inputs,
//! get the residual program (its listing, its ELF, its figures).
//!
//! This is the pipeline the `wiper` command line runs (`wiper specialize`,
//! `compare` and `check` build on [`Residual`]): load, locate the function,
//! parse the static inputs, specialize, optimize, plan the new segment,
//! encode, and then list or write.
//!
//! ```no_run
//! let binary = wiper::Binary::open("testdata/bin/power-O2")?;
//! let power = binary.function("power")?;
//! let spec = wiper::Spec::parse(&["arg1=1", "arg2=2"])?;
//! let residual = wiper::specialize(&binary, &power, &spec)?;
//! print!("{}", residual.listing());
//! residual.write_elf("power-y1-n2")?;
//! eprintln!("{}", residual.summary());
//! # Ok::<(), wiper::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wiper_x86::Disassembler;

pub use wiper_specialize::Options;
/// A command line fixed at extraction time ([`extract`]).
pub use wiper_specialize::ProcessImage;
/// A warning of meaning about a spec: probably not what was meant, but
/// never an error (docs/usage.md, "Warnings", lists each one). Its
/// `Display` is the one-line message the CLI prints after `wiper: warning:`.
pub use wiper_specialize::Warning;

/// Why a library call failed. Every message is one line and names the
/// instruction and address where one is involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read, or is not an i386 ELF executable wiper reads.
    #[error(transparent)]
    Elf(#[from] wiper_elf::ElfError),
    /// The function is not found, or does not decode.
    #[error(transparent)]
    Function(#[from] wiper_x86::DecodeError),
    /// An address given for the function is code but not the start of a
    /// function wiper knows (use [`Binary::function_forced`] to take it anyway).
    #[error(
        "{address:#x} is not the start of a known function (nearest: {}); --force uses it anyway",
        nearest_text(.below, .above)
    )]
    NotFunctionStart {
        /// The address asked for.
        address: u32,
        /// The nearest known function start below it, with its name.
        below: Option<(u32, String)>,
        /// The nearest known function start above it, with its name.
        above: Option<(u32, String)>,
    },
    /// A malformed static input.
    #[error(transparent)]
    Spec(#[from] wiper_bta::SpecError),
    /// The specializer refused the function or these inputs.
    #[error(transparent)]
    Specialize(#[from] wiper_specialize::SpecializeError),
    /// The residual program could not be laid out, encoded or written as ELF.
    #[error(transparent)]
    Emit(#[from] wiper_emit::EmitError),
    /// A dynamically linked executable whose `main` cannot be found
    /// (extraction starts there).
    #[error("cannot extract: no `main` found (neither a symbol nor from the entry point's call of __libc_start_main)")]
    NoMain,
    /// An output file could not be written.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// `0x8049000 <power> below, 0x8049040 <main> above` for
/// [`Error::NotFunctionStart`].
fn nearest_text(below: &Option<(u32, String)>, above: &Option<(u32, String)>) -> String {
    let parts: Vec<String> = [(below, "below"), (above, "above")]
        .into_iter()
        .filter_map(|(f, side)| f.as_ref().map(|(a, n)| format!("{a:#x} <{n}> {side}")))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `binary` with its writable objects that no code writes recorded as
/// constant (docs/specialization.md, "Static data"): the BTA and the
/// specializer then read them like read-only data.
fn with_unwritten_data(binary: wiper_elf::Binary) -> wiper_elf::Binary {
    let unwritten = wiper_x86::unwritten_objects(&binary);
    binary.with_unwritten(unwritten)
}

/// An i386 ELF executable, loaded.
#[derive(Clone, Debug)]
pub struct Binary {
    path: PathBuf,
    inner: Arc<wiper_elf::Binary>,
}

impl Binary {
    /// Loads the executable at `path` (32-bit i386 ELF, `ET_EXEC` or `ET_DYN`).
    pub fn open(path: impl AsRef<Path>) -> Result<Binary, Error> {
        let path = path.as_ref();
        Ok(Binary {
            path: path.to_path_buf(),
            inner: Arc::new(with_unwritten_data(wiper_elf::Binary::open(path)?)),
        })
    }

    /// Loads an executable already in memory; `name` stands for its path
    /// (in [`Binary::path`] and messages). The fuzz targets use this.
    pub fn from_bytes(name: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Binary, Error> {
        Ok(Binary::from_loaded(
            name.as_ref(),
            wiper_elf::Binary::parse(bytes)?,
        ))
    }

    /// `binary`, loaded from `path`.
    pub(crate) fn from_loaded(path: &Path, binary: wiper_elf::Binary) -> Binary {
        Binary {
            path: path.to_path_buf(),
            inner: Arc::new(with_unwritten_data(binary)),
        }
    }

    /// The path it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The loaded ELF, for the lower-level crates (`wiper_x86`, ...).
    pub fn elf(&self) -> &wiper_elf::Binary {
        &self.inner
    }

    /// The function `spec`: a symbol name (or `main`, found from `_start` in
    /// a stripped binary), or an entry address as `0x` and hex digits. An
    /// address must be a known function start (a symbol, an `.eh_frame`
    /// entry, the entry point, `main` or a direct call target); otherwise the
    /// error names the nearest known starts.
    pub fn function(&self, spec: &str) -> Result<Function, Error> {
        self.locate(spec, false)
    }

    /// Like [`Binary::function`], but an address that is not a known
    /// function start is taken as one (the CLI's `--force`).
    pub fn function_forced(&self, spec: &str) -> Result<Function, Error> {
        self.locate(spec, true)
    }

    /// The function `spec`, checked to start a known function unless `force`.
    pub(crate) fn locate(&self, spec: &str, force: bool) -> Result<Function, Error> {
        let entry = locate(&self.inner, spec, force)?;
        let name = self
            .inner
            .function_at(entry)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| format!("fn_{entry:x}"));
        Ok(Function { entry, name })
    }
}

/// The entry address of the function `spec` (see [`Binary::function`]);
/// unless `force`, an address must be a known function start.
fn locate(binary: &wiper_elf::Binary, spec: &str, force: bool) -> Result<u32, Error> {
    let entry = wiper_x86::resolve_function(binary, spec)?;
    let by_address = spec.starts_with("0x") || spec.starts_with("0X");
    // Cheap cases first: a symbol, an unwind entry, the entry point, main.
    if !by_address
        || force
        || binary.function_at(entry).is_some()
        || entry == binary.entry
        || binary.unwind_ranges().iter().any(|r| r.start == entry)
        || wiper_x86::find_main(binary) == Some(entry)
    {
        return Ok(entry);
    }
    let starts = Disassembler::new(binary).discover_functions();
    let at = starts.partition_point(|&a| a < entry);
    if starts.get(at) == Some(&entry) {
        return Ok(entry);
    }
    let named = |a: u32| (a, binary.name_of(a).unwrap_or_else(|| format!("fn_{a:x}")));
    Err(Error::NotFunctionStart {
        address: entry,
        below: at.checked_sub(1).map(|i| named(starts[i])),
        above: starts.get(at).map(|&a| named(a)),
    })
}

/// A function of a [`Binary`]: where it starts and what it is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    entry: u32,
    name: String,
}

impl Function {
    /// Its entry address.
    pub fn entry(&self) -> u32 {
        self.entry
    }

    /// Its symbol name, or `fn_ADDR` without one.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Static inputs, in the syntax of the CLI's `--static` (docs/usage.md):
/// `argN=INT`, `argN=@str:TEXT`, `argN=@i32:1,2,3`, `argN=@bytes:HEX`,
/// `REG=INT`. Every input not given is dynamic; [`Spec::default`] has none.
#[derive(Clone, Debug, Default)]
pub struct Spec(wiper_bta::StaticSpec);

impl Spec {
    /// Parses the specs, each as one `--static` value.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Spec, Error> {
        Ok(Spec(wiper_bta::StaticSpec::parse_all(specs)?))
    }

    /// The specializer's form.
    pub fn inner(&self) -> &wiper_bta::StaticSpec {
        &self.0
    }
}

/// Specializes `function` of `binary` for `spec` with the default
/// [`Options`] (those of `wiper specialize` without options).
pub fn specialize(binary: &Binary, function: &Function, spec: &Spec) -> Result<Residual, Error> {
    specialize_with(binary, function, spec, &Options::default())
}

/// Specializes `function` of `binary` for `spec` with `options`.
pub fn specialize_with(
    binary: &Binary,
    function: &Function,
    spec: &Spec,
    options: &Options,
) -> Result<Residual, Error> {
    Residual::build(
        binary.inner.clone(),
        function.clone(),
        spec.inner(),
        options,
    )
}

/// Extracts the component of `binary` that the command line `image`
/// selects (`wiper extract`, docs/extraction.md): a statically linked
/// executable is specialized from its entry point as Linux starts it with
/// that command line, a dynamically linked one from `main`.
pub fn extract(
    binary: &Binary,
    image: &ProcessImage,
    options: &Options,
) -> Result<Residual, Error> {
    let elf = &binary.inner;
    let (entry, start) = if elf.interpreter.is_none() {
        (elf.entry, wiper_specialize::Start::Process(image))
    } else {
        let main = wiper_x86::find_main(elf).ok_or(Error::NoMain)?;
        (main, wiper_specialize::Start::Main(image))
    };
    let name = elf
        .function_at(entry)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| format!("fn_{entry:x}"));
    let function = Function { entry, name };
    let mut residual = Residual::build_from(binary.inner.clone(), function, start, options)?;
    residual.symbol_suffix = "extracted";
    Ok(residual)
}

/// One function of the original program in an extracted one: kept (and
/// why) or dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionFate {
    /// Its entry address.
    pub addr: u32,
    /// Its symbol name, or `fn_ADDR`.
    pub name: String,
    /// Its size in bytes (its symbol's, else up to the next function).
    pub size: u32,
    /// Why it may still run, or `None` when it cannot.
    pub kept: Option<wiper_x86::reach::Kept>,
}

impl Residual {
    /// Where the residual enters the original code: the targets of its
    /// direct calls and jumps outside itself, and the constants in its
    /// instructions (a function pointer it passes on), with the addresses
    /// of the GOT slots it reads (what `wiper_x86::reach` counts of them
    /// is for it to decide: every constant outside the residual is
    /// returned but the return addresses below). The return address of a
    /// call the specializer inlined, stored on the stack (into the return
    /// address slot of the inlined call), is not an entry when the
    /// residual never jumps into the original code: only code that left
    /// for the original could return through that slot.
    pub fn original_entries(&self) -> Vec<u32> {
        let code = self.encoded.load_vaddr;
        let end = code.saturating_add(self.encoded.code.len() as u32);
        let outside = |v: u32| !(code..end).contains(&v);
        let instructions = || {
            self.result
                .residual
                .blocks
                .iter()
                .flat_map(|b| &b.items)
                .filter_map(|item| match item {
                    wiper_residual::Item::Instr(ins, _) => Some(ins),
                    _ => None,
                })
        };
        let leaves = instructions().any(|ins| {
            ins.flow_control() != iced_x86::FlowControl::Call
                && ins.flow_control() != iced_x86::FlowControl::IndirectCall
                && (ins.flow_control() == iced_x86::FlowControl::IndirectBranch
                    || wiper_x86::reach::constants(ins, None)
                        .first()
                        .is_some_and(|&t| {
                            ins.op0_kind() == iced_x86::OpKind::NearBranch32
                                && outside(t)
                                && self.binary.is_executable(t)
                        }))
        });
        let returns = &self.result.inlined_return_addresses;
        let mut out = Vec::new();
        for ins in instructions() {
            let stack_store = ins.code() == iced_x86::Code::Mov_rm32_imm32
                && ins.memory_base() == iced_x86::Register::ESP;
            // With the GOT's address added to displacements: code that is
            // position-independent computes a function's address from the
            // GOT pointer (`lea eax, [ebp - 0x11671]` in musl's start-up,
            // `ebp` reloaded from the stack), and the residual keeps such
            // instructions when the GOT pointer is dynamic there.
            for value in wiper_x86::reach::constants(ins, self.binary.got) {
                if !outside(value) || (stack_store && !leaves && returns.contains(&value)) {
                    continue;
                }
                out.push(value);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every function of the original program, kept or dropped, when
    /// control enters the original code only where the residual does
    /// (`wiper_x86::reach`).
    pub fn function_fates(&self) -> Vec<FunctionFate> {
        self.reached().0
    }

    /// [`Residual::function_fates`], with every constant of the residual
    /// and of the kept functions (what else the code that may run may
    /// address).
    fn reached(&self) -> (Vec<FunctionFate>, BTreeSet<u32>) {
        let mut dis = Disassembler::new(&self.binary);
        // The program starts at its entry point: the specialized function
        // itself (its entry jumps to the residual), or `_start` calling
        // the specialized `main`.
        let mut entries = self.original_entries();
        entries.push(self.binary.entry);
        let replaced = [self.function.entry];
        let reached = wiper_x86::reach::kept_functions(&mut dis, &entries, &replaced);
        let kept = reached.fates;
        let starts: Vec<u32> = kept.keys().copied().collect();
        let text_end = |a: u32| {
            self.binary
                .segment_at(a)
                .map_or(a, |s| s.vaddr + s.mem_size)
        };
        let fates = kept
            .iter()
            .enumerate()
            .map(|(i, (&addr, why))| {
                let symbol = self.binary.function_at(addr).filter(|s| s.size > 0);
                let next = starts
                    .get(i + 1)
                    .copied()
                    .unwrap_or(u32::MAX)
                    .min(text_end(addr));
                FunctionFate {
                    addr,
                    name: self
                        .binary
                        .name_of(addr)
                        .unwrap_or_else(|| format!("fn_{addr:x}")),
                    size: symbol.map_or(next.saturating_sub(addr), |s| s.size),
                    kept: *why,
                }
            })
            .collect();
        (fates, reached.constants)
    }
}

/// The alignment gcc gives functions: fewer bytes than this between the
/// end of a dropped function and the next function are its padding.
const FUNCTION_ALIGN: u32 = 16;

/// The figures of the summary line of `wiper specialize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The function's name (`fn_ADDR` without a symbol).
    pub function: String,
    /// Instructions of the original function.
    pub original_instructions: usize,
    /// Residual instructions (PC thunks excluded).
    pub residual_instructions: usize,
    /// Bytes of residual code.
    pub residual_bytes: u32,
    /// Instructions Reduce synthesized.
    pub reduced: usize,
    /// Of those, how many Z3 proved (only those are used).
    pub proved: usize,
    /// Instructions the fallback emitted.
    pub fallbacks: usize,
    /// Jumps into the original code where a program point had spent its
    /// budget of variants (docs/specialization.md).
    pub left: usize,
    /// Time spent specializing and optimizing (varies from run to run).
    pub time: Duration,
}

impl fmt::Display for Summary {
    /// `specialized power: 17 -> 6 instructions, 15 bytes, 2 reduced (2
    /// proved), 0 fallbacks, 0.02 s`, then `, 3 jumps into the original
    /// code` when some program point spent its budget of variants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "specialized {}: {} -> {} instructions, {} bytes, {} reduced ({} proved), {} fallbacks, {:.2} s",
            self.function,
            self.original_instructions,
            self.residual_instructions,
            self.residual_bytes,
            self.reduced,
            self.proved,
            self.fallbacks,
            self.time.as_secs_f64()
        )?;
        if self.left > 0 {
            write!(f, ", {} jumps into the original code", self.left)?;
        }
        Ok(())
    }
}

/// A specialized function, encoded and ready to be listed or written.
pub struct Residual {
    pub(crate) binary: Arc<wiper_elf::Binary>,
    pub(crate) function: Function,
    pub(crate) result: wiper_specialize::Specialization,
    pub(crate) plan: wiper_emit::Plan,
    pub(crate) encoded: wiper_emit::Encoded,
    /// Labels of blocks the optimizer made (it numbers them after the
    /// highest label left, which may be one a specialization point had):
    /// noted only when the points are recorded.
    pub(crate) made_labels: BTreeSet<wiper_residual::Label>,
    /// The output's symbol for the residual code is `NAME.SUFFIX`.
    pub(crate) symbol_suffix: &'static str,
}

impl Residual {
    /// The pipeline: specialize, optimize, plan the new segment, encode.
    pub(crate) fn build(
        binary: Arc<wiper_elf::Binary>,
        function: Function,
        spec: &wiper_bta::StaticSpec,
        options: &Options,
    ) -> Result<Residual, Error> {
        let start = wiper_specialize::Start::Function(spec);
        Residual::build_from(binary, function, start, options)
    }

    /// The pipeline from `start`.
    pub(crate) fn build_from(
        binary: Arc<wiper_elf::Binary>,
        function: Function,
        start: wiper_specialize::Start<'_>,
        options: &Options,
    ) -> Result<Residual, Error> {
        let mut result =
            wiper_specialize::specialize_from(&binary, function.entry, start, options)?;
        let started = Instant::now();
        let made_labels = if options.record_points {
            optimize_noting_new_labels(&mut result.residual)
        } else {
            wiper_opt::optimize(&mut result.residual);
            BTreeSet::new()
        };
        result.stats.time += started.elapsed();
        let plan = wiper_emit::plan(&binary, result.residual.data.len() as u32)?;
        let encoded = wiper_emit::encode(&plan, &result.residual)?;
        Ok(Residual {
            binary,
            function,
            result,
            plan,
            encoded,
            made_labels,
            symbol_suffix: "specialized",
        })
    }

    /// The function it specializes.
    pub fn function(&self) -> &Function {
        &self.function
    }

    /// The annotated listing `wiper specialize --emit asm` prints: a header
    /// line, then every instruction with its address, bytes, Intel syntax
    /// and where it came from (`; from 0x...`, `; reduced from 0x...`, ...).
    /// It depends only on the binary, the function and the spec: no paths,
    /// no times.
    pub fn listing(&self) -> String {
        self.listing_in(wiper_x86::Syntax::Intel)
    }

    /// The listing in `syntax` (AT&T for [`wiper_x86::Syntax::Gas`]).
    pub fn listing_in(&self, syntax: wiper_x86::Syntax) -> String {
        wiper_emit::listing_in(&self.binary, &self.encoded, syntax)
    }

    /// The raw residual code, which loads at [`Residual::code_address`].
    pub fn code(&self) -> &[u8] {
        &self.encoded.code
    }

    /// Where [`Residual::code`] loads (relative to the load base in a PIE).
    pub fn code_address(&self) -> u32 {
        self.encoded.load_vaddr
    }

    /// The figures of the summary line.
    pub fn summary(&self) -> Summary {
        let st = &self.result.stats;
        Summary {
            function: self.function.name.clone(),
            original_instructions: st.original_instructions,
            residual_instructions: self.encoded.instruction_count,
            residual_bytes: self.encoded.code_size(),
            reduced: st.reduced,
            proved: st.proved,
            fallbacks: st.fallbacks,
            left: st.left,
            time: st.time,
        }
    }

    /// The warnings of meaning about the spec and the function, in the
    /// order `wiper specialize` prints them (`wiper: warning: ...`): a
    /// static integer used as an address, a static input never read, a
    /// static buffer read past its end, a function nothing in the binary
    /// calls, call sites passing other constants than the spec. Empty for
    /// a spec that makes sense; they never change the residual.
    pub fn warnings(&self) -> &[Warning] {
        &self.result.warnings
    }

    /// The specializer's own counts (points, restarts, BTA figures, ...).
    pub fn stats(&self) -> &wiper_specialize::Stats {
        &self.result.stats
    }

    /// The runnable ELF: the input byte for byte, with the function's entry
    /// jumping to the residual code in a new segment, and a symbol
    /// `NAME.specialized`.
    pub fn elf_bytes(&self) -> Result<Vec<u8>, Error> {
        let symbol = format!("{}.{}", self.function.name, self.symbol_suffix);
        Ok(wiper_emit::write_elf(
            self.binary.file_bytes(),
            &self.binary,
            &self.plan,
            &self.result.residual,
            &self.encoded,
            self.function.entry,
            &symbol,
        )?)
    }

    /// The compact ELF of an extraction: [`Residual::elf_bytes`] without
    /// the original functions that cannot run (`function_fates`), the
    /// replaced function's body after its entry's jump, and `.eh_frame`
    /// and `.eh_frame_hdr` when no code that may run refers to them (an
    /// extracted program does not unwind its stack).
    pub fn compact_elf_bytes(&self) -> Result<Vec<u8>, Error> {
        let full = self.elf_bytes()?;
        let (fates, constants) = self.reached();
        let mut ranges = Vec::new();
        for (k, f) in fates.iter().enumerate() {
            // Alignment padding after a dropped function goes with it.
            let end = f.addr.saturating_add(f.size);
            let next = fates.get(k + 1).map_or(end, |n| n.addr);
            let end = if next > end && next - end < FUNCTION_ALIGN {
                next
            } else {
                end
            };
            match f.kept {
                None => ranges.push((f.addr, end)),
                Some(wiper_x86::reach::Kept::Replaced) if f.size > 5 => {
                    ranges.push((f.addr + 5, end))
                }
                _ => {}
            }
        }
        ranges.extend(self.unused_unwind_tables(&constants));
        Ok(wiper_emit::compact_elf(
            &full,
            &wiper_emit::Dropped { ranges },
        )?)
    }

    /// The address ranges of `.eh_frame` and `.eh_frame_hdr` when no code
    /// that may run (the residual, the kept functions: their `constants`)
    /// holds an address in them.
    fn unused_unwind_tables(&self, constants: &BTreeSet<u32>) -> Vec<wiper_emit::Range> {
        let tables: Vec<wiper_emit::Range> = self
            .binary
            .sections
            .iter()
            .filter(|s| s.name == ".eh_frame" || s.name == ".eh_frame_hdr")
            .map(|s| (s.addr, s.addr.saturating_add(s.size)))
            .collect();
        let referenced = |&(a, b): &wiper_emit::Range| constants.range(a..b).next().is_some();
        if tables.iter().any(referenced) {
            return Vec::new();
        }
        tables
    }

    /// Writes [`Residual::elf_bytes`] to `path` and makes it executable.
    pub fn write_elf(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let bytes = self.elf_bytes()?;
        write_executable(path, &bytes).map_err(|e| Error::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// Optimizes `residual` and returns the labels of the blocks the
/// optimizer made: those that appear after a pass without being there
/// before it.
fn optimize_noting_new_labels(
    residual: &mut wiper_residual::Residual,
) -> BTreeSet<wiper_residual::Label> {
    let labels = |r: &wiper_residual::Residual| -> BTreeSet<_> {
        r.blocks.iter().map(|b| b.label).collect()
    };
    let mut alive = labels(residual);
    let mut made = BTreeSet::new();
    wiper_opt::optimize_observed(residual, |_, r| {
        let now = labels(r);
        made.extend(now.difference(&alive).copied());
        alive = now;
    });
    made
}

/// Writes `bytes` to `out` and makes it executable.
pub(crate) fn write_executable(out: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(out, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut p = std::fs::metadata(out)?.permissions();
        p.set_mode(p.mode() | 0o755);
        std::fs::set_permissions(out, p)?;
    }
    Ok(())
}
