# ks_component(DIR BINARY [PKG_TARGETS...])
#
# Every component folder (DESIGN.md §2) is built the same way: its *.c files
# except main.c form a static library `ks-DIR` (public headers in DIR/include,
# internals beside the sources); DIR/main.c, when present, is the thin binary
# BINARY linked against it ("-" for a library-only component).  The folder is picked up as soon as it has a .c
# file, so starting a component needs no edit here.  Unit tests
# (tests/unit/DIR/) link every component library.
function(ks_component dir binary)
  set(root ${CMAKE_SOURCE_DIR}/${dir})
  file(GLOB src CONFIGURE_DEPENDS ${root}/*.c)
  set(main ${root}/main.c)
  list(REMOVE_ITEM src ${main})
  if(src)
    add_library(ks-${dir} STATIC ${src})
    target_include_directories(ks-${dir} PUBLIC ${root}/include PRIVATE ${root})
    target_link_libraries(ks-${dir} PUBLIC kiseki-common ${ARGN})
    set_property(GLOBAL APPEND PROPERTY KS_COMPONENT_LIBS ks-${dir})
  endif()
  if(EXISTS ${main} AND NOT binary STREQUAL "-")
    add_executable(${binary} ${main})
    target_include_directories(${binary} PRIVATE ${root})
    if(src)
      target_link_libraries(${binary} PRIVATE ks-${dir})
    else()
      target_link_libraries(${binary} PRIVATE kiseki-common ${ARGN})
    endif()
  endif()
endfunction()
