rule Fine
{
	strings:
		$a = "a perfectly fine string"
	condition:
		$a
}

rule Slow_Rule
{
	strings:
		$b = { 00 ?? }
	condition:
		$b
}
