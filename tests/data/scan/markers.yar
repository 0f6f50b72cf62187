/*
 * Harmless test rules for the scan engine's unit tests: they match marker
 * strings that the tests write into temporary files. No real malware
 * signature is or should ever be here.
 */
import "math"

rule Vigil_Test_Marker : test marker
{
	meta:
		description = "Vigil test marker (harmless)"
		author = "Vigil tests"
		reference = "https://example.invalid/vigil/test-marker"
		score = 85
		date = "2024-01-01"
		internal = true
		revision = 3
	strings:
		$s1 = "VIGIL-TEST-MARKER-7d1f3a"
		$s2 = { 56 49 47 49 4c 2d 48 45 58 2d 4d 41 52 4b } // "VIGIL-HEX-MARK"
	condition:
		any of them
}

rule Vigil_Test_Weak
{
	meta:
		description = "Weak test indicator"
		score = 45
	strings:
		$w = "vigil-weak-indicator" nocase
	condition:
		$w
}

rule Vigil_Test_External
{
	meta:
		description = "Matches on the file name external"
		score = "50"
	condition:
		filename == "external-check.bin" and extension == ".bin"
}

rule Vigil_Test_NoScore
{
	strings:
		$n = "VIGIL-NOSCORE-MARK"
	condition:
		$n
}

rule Vigil_Test_Magic
{
	meta:
		score = 40
	strings:
		$m = "vigil-elf-marker"
	condition:
		filetype == "ELF" and $m
}
