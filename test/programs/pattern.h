/*
 * Reproducible page contents: every page is filled from a xorshift64 stream
 * seeded by (region salt, page index), so each page differs from every other
 * and a check can say which page is wrong.
 */
#ifndef CKPT_TEST_PATTERN_H
#define CKPT_TEST_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#define PAGE 4096UL
#define WORDS_PER_PAGE (PAGE / sizeof(uint64_t))

static inline uint64_t page_seed(uint64_t salt, size_t page)
{
	uint64_t s = (salt ^ 0x9e3779b97f4a7c15ULL) * ((uint64_t)page * 2 + 1);
	return s ? s : 1; /* xorshift's state must not be zero */
}

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static inline void fill_page(void *page, uint64_t salt, size_t index)
{
	uint64_t *w = page, s = page_seed(salt, index);
	for (size_t i = 0; i < WORDS_PER_PAGE; i++)
		w[i] = xorshift64(&s);
}

/* Returns 1 when the page holds what fill_page(salt, index) wrote. */
static inline int page_matches(const void *page, uint64_t salt, size_t index)
{
	const uint64_t *w = page;
	uint64_t s = page_seed(salt, index);
	for (size_t i = 0; i < WORDS_PER_PAGE; i++)
		if (w[i] != xorshift64(&s))
			return 0;
	return 1;
}

static inline void fill_pages(void *start, size_t pages, uint64_t salt)
{
	for (size_t p = 0; p < pages; p++)
		fill_page((char *)start + p * PAGE, salt, p);
}

/* Returns the index of the first page that differs, or -1. */
static inline long first_bad_page(const void *start, size_t pages, uint64_t salt)
{
	for (size_t p = 0; p < pages; p++)
		if (!page_matches((const char *)start + p * PAGE, salt, p))
			return (long)p;
	return -1;
}

/* FNV-1a over 64-bit words. */
static inline uint64_t checksum(const void *start, size_t bytes)
{
	const uint64_t *w = start;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < bytes / sizeof *w; i++)
		h = (h ^ w[i]) * 0x100000001b3ULL;
	return h;
}

static inline int page_is_zero(const void *page)
{
	const uint64_t *w = page;
	for (size_t i = 0; i < WORDS_PER_PAGE; i++)
		if (w[i])
			return 0;
	return 1;
}

/* A private anonymous area of `pages` pages filled with the pattern of `salt` (area_init), and its check (area_intact). */
struct pattern_area { char *start; size_t pages; uint64_t salt; uint64_t sum; };

static inline int area_init(struct pattern_area *a, size_t pages, uint64_t salt)
{
	a->start = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->start == MAP_FAILED)
		return -1;
	a->pages = pages;
	a->salt = salt;
	fill_pages(a->start, pages, salt);
	a->sum = checksum(a->start, pages * PAGE);
	return 0;
}

/* 1 if the area still holds its pattern; else 0 and msg names the first bad page. */
static inline int area_intact(const struct pattern_area *a, char *msg, size_t size)
{
	if (checksum(a->start, a->pages * PAGE) == a->sum)
		return 1;
	snprintf(msg, size, "area checksum differs, first bad page %ld", first_bad_page(a->start, a->pages, a->salt));
	return 0;
}

#endif
