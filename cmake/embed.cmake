# Turns a file into a C array at build time:
#   cmake -DIN=file -DOUT=file.c -DNAME=sym -P embed.cmake
# gives `const unsigned char sym[]` (NUL-terminated) and `const size_t
# sym_len` (without the NUL). Used to serve docs/openapi.json from vigild.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}"
     "/* Generated from ${IN} by cmake/embed.cmake; do not edit. */\n"
     "#include <stddef.h>\n"
     "const unsigned char ${NAME}[] = {${body}0x00};\n"
     "const size_t ${NAME}_len = ${len};\n")
