//! The pause image: what holds an awsvpc task's network namespace while its containers come
//! and go (ECS's `~internal~ecs~pause` container). Its one file, `/pause`, is a static x86-64
//! program that waits for signals forever; no registry is needed, the agent imports the image
//! from a tar archive it builds itself.

/// The image's reference on the host.
pub const PAUSE_IMAGE: &str = "berth/pause:1";

/// The program's path in the image.
pub const PAUSE_PATH: &str = "/pause";

/// Where the program is loaded (the usual base of a static executable).
const LOAD_ADDRESS: u64 = 0x40_0000;
const ELF_HEADER_SIZE: u16 = 64;
const PROGRAM_HEADER_SIZE: u16 = 56;

/// `loop: mov eax, 34 (pause); syscall; jmp loop` — it sleeps until a signal arrives and goes
/// back to sleep after. As PID 1 of its namespace it ignores SIGTERM; the agent removes it with
/// SIGKILL.
const CODE: [u8; 9] = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

/// The pause program as an ELF64 executable for x86-64 Linux: one header, one loadable
/// read+execute segment holding the whole file, the code right after the headers.
pub fn program() -> Vec<u8> {
    let code_offset = u64::from(ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE);
    let size = code_offset + CODE.len() as u64;
    let mut elf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI, padding.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: executable
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: x86-64
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(LOAD_ADDRESS + code_offset).to_le_bytes()); // e_entry
    elf.extend_from_slice(&u64::from(ELF_HEADER_SIZE).to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&ELF_HEADER_SIZE.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&PROGRAM_HEADER_SIZE.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
                                    // The program header: PT_LOAD, readable and executable, the whole file at LOAD_ADDRESS.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes());
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&CODE);
    elf
}

/// A tar archive (POSIX ustar) of the image's filesystem: `/pause`, mode 0755.
pub fn rootfs() -> Vec<u8> {
    let data = program();
    let mut header = [0u8; 512];
    put(&mut header[0..100], b"pause");
    put(&mut header[100..108], b"0000755\0");
    put(&mut header[108..116], b"0000000\0");
    put(&mut header[116..124], b"0000000\0");
    put(
        &mut header[124..136],
        format!("{:011o}\0", data.len()).as_bytes(),
    );
    put(&mut header[136..148], b"00000000000\0");
    header[156] = b'0'; // a regular file
    put(&mut header[257..265], b"ustar\x0000");
    // The checksum counts its own field as spaces.
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header[148..156], format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(&data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    // Two empty blocks end the archive.
    tar.resize(tar.len() + 1024, 0);
    tar
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_a_static_x86_64_executable_whose_entry_is_its_code() {
        let elf = program();
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(elf.len(), 64 + 56 + CODE.len());
        let entry = u64::from_le_bytes(elf[24..32].try_into().expect("8 bytes"));
        assert_eq!(entry, LOAD_ADDRESS + 120);
        assert_eq!(&elf[120..], &CODE);
        // The jump goes back to the start of the code: 9 bytes before its end.
        assert_eq!(CODE[8] as i8, -9);
    }

    #[test]
    fn the_rootfs_is_one_ustar_file_with_a_valid_checksum() {
        let tar = rootfs();
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(&tar[..5], b"pause");
        assert_eq!(&tar[257..263], b"ustar\0");
        let stored = std::str::from_utf8(&tar[148..154]).expect("octal");
        let stored = u32::from_str_radix(stored, 8).expect("octal");
        let mut header = tar[..512].to_vec();
        header[148..156].fill(b' ');
        assert_eq!(stored, header.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert_eq!(&tar[512..512 + program().len()], program().as_slice());
    }
}
